"""What the scheduling environment observes and the trainer probes: uncertainty measures and
their histograms (`mtl_sched.observation.uncertainty`), the probe pass and probe-set selection
(`mtl_sched.observation.probing`), probe predictions handed in from outside
(`mtl_sched.observation.probe_inputs`), how recently each task was chosen
(`mtl_sched.observation.recency`) and per-task feature rows
(`mtl_sched.observation.task_features`)."""
