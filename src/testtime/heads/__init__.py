"""Value heads on a frozen model's hidden states: the features, the head and its artifact on disk.

Both sides import this: ``verifiers.value_head`` scores with a trained head, ``learn`` trains one.
"""
