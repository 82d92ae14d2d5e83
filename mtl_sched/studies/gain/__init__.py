"""Predicting MTL gains from task features (seed 004): dataset and learning-curve features of
each task and a logistic regression over task pairs."""
