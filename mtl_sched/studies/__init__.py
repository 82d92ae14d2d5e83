"""The seed experiments that are more than a scheduler run (Q-MTL vs STL vs ensemble, ...)."""
