"""
Several processes, one chat: the Redis backplane (C{--redis URL}, SPEC 10,
docs/CLUSTER.md).  Nothing here is imported without C{--redis}.
"""
