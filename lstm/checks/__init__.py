"""Comparison and checks: the models against each other and finite differences, one step checked, gradient flow."""
