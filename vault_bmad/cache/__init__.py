"""The multi-level cache: `tiered.TieredCache` over `memory.MemoryCache` (L1, L2) and
`disk.DiskCache` (L3), ordered by `policy.AdaptiveTinyLfu`, keyed by `keys.content_key`;
`domain.named_cache` for the domain's own caches. Its benchmark lives in `vault_bmad.bench`."""
