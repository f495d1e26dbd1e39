"""Scope: deciding whether a query touches a stored edit.

This will hold the trained SERAC-style classifier that scores (edit, query) pairs, its
training and evaluation, and the calibrated similarity-threshold baseline behind the same
interface. Out-of-scope queries go to the model untouched.
"""
