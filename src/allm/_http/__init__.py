"""allm's HTTP runtime: the only package that imports httpx2 (in `adapter` and
`transport`). `sse` is sans-IO and safe for codecs to import. Import the submodules
directly (`allm._http.adapter.HttpAdapter`); this package imports nothing so that
`allm._http.sse` never drags httpx2 in."""
