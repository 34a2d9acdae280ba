"""`tagparse run --distributor ray`: Ray Data reads and parses; the driver still writes.

`cluster` joins or starts a Ray cluster (one-line errors when Ray is missing or unreachable),
`source` reads the inputs as a Ray dataset, `stages` turns a backend into a Ray Data stage (an
actor pool, or `ray.data.llm`'s processors), `inputs` hands the parsed records to the writer of
`tagparse.pipeline`, and `run` ties them together for one run. Nothing here is imported unless
`--distributor ray` is asked for: Ray is the `tagparse[ray]` extra.
"""
