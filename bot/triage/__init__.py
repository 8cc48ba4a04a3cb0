"""Learned triage: a small linear model over character n-grams that works beside the rule-based classifier.

model.py runs it (standard library only), train.py fits it (scikit-learn, the optional `train` extra) and
combine.py merges its prediction with the rules' Classification.
"""
