"""The serving benchmark (``python -m benchmarks.serve``): `edgesbert serve` against the other ways to serve.

``__main__`` runs it and writes the report; ``systems`` says which servers (a ``Server``: a command line and
how to talk to it); ``load`` starts one and drives it with wrk, reading its CPU and RSS; ``langchain`` times
LangChain's ``OpenAIEmbeddings`` through it against the runtime in-process.
"""
