"""Code shared by training and the service: the signal contract and the model file contract."""
