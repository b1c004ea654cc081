"""A stand-in for Hugging Face Text Generation Inference (TGI 3.3.7), standard library only.

It takes ``text-generation-launcher`` arguments (and their SCREAMING_SNAKE environment variables), runs
the download step TGI's launcher runs (``text-generation-server download-weights``, server.py: the real
hub cache layout, resumable, at a set rate; offline mode, an unreachable Hub and gated models fail as they
do in TGI; hub.py), starts like TGI (the port opens only once the model is loaded), and serves TGI's HTTP
API with TGI's shapes, status codes, error messages, headers and Prometheus metrics.  Generated text is a
list of words chosen from a hash of (model id, prompt[, seed]), so greedy requests are deterministic.

Usage:  python3 -m tgi_nix.mock --model-id org/model [launcher flags...]
        python3 -m tgi_nix.mock.server download-weights org/model [--revision R] [--json-output]
(In the mock images the package is `tgi_nix_mock`, run as `text-generation-launcher` and
`text-generation-server`.)

Mock-only knobs (flag / environment variable):
  --load-delay SECONDS      TGI_MOCK_LOAD_DELAY      "shard" load time after the download (default 1.0)
  --download-delay SECONDS  TGI_MOCK_DOWNLOAD_DELAY  the Hub's answer time before a download (default 0.5)
  --token-delay SECONDS     TGI_MOCK_TOKEN_DELAY     sleep per generated token (default 0.0)
  --never-ready             TGI_MOCK_NEVER_READY=1   the model never loads (the port stays closed)
  --health-before-ready     TGI_MOCK_HEALTH_BEFORE_READY=1   open the port at once, /health 503 until loaded
                            TGI_MOCK_MODEL_BYTES     size of the weight files (default 32 MiB)
                            TGI_MOCK_DOWNLOAD_RATE   bytes/s (default 8 MiB/s, 0: unlimited)
                            TGI_MOCK_DOWNLOAD_STALL_AFTER   bytes after which the download hangs
                            TGI_MOCK_GATED           model ids that need HF_TOKEN (comma-separated)
Magic input: a prompt containing ``__tgi_mock_fail__`` fails with 424 (error_type "generation").
Mock-only endpoints: GET /mock/state -> {downloads, hf_token_sha256_prefix, ready, args, requests_in_flight};
POST /mock/unhealthy -> 204, and from then on /health answers 503 (TGI's "unhealthy") while the process
and its port stay up, as when TGI's shard health check fails.
Secrets (HF_TOKEN, --api-key) are never logged or served; only a sha256 prefix of HF_TOKEN is.

Standard library only, and no imports from outside this package (tests/test_mock_stdlib.py): the
folder is copied into container images as it is.
"""

from .main import main

__all__ = ["main"]
