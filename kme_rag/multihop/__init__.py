"""Multi-hop questions over edited knowledge.

This will hold MeLLo-style decomposition (subquestions checked against retrieved edited
facts) and graph-guided answering that walks the fact graph hop by hop.
"""
