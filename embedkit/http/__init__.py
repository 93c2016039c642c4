"""The HTTP side: a Starlette app of thin routes over :class:`embedkit.embed.service.Embedder`."""
