"""What the mock claims to be (TGI's version and limits) and the fixed facts its parts share."""

from __future__ import annotations

import hashlib

TGI_VERSION = "3.3.7"
GIT_SHA = hashlib.sha1(f"tgi-mock-{TGI_VERSION}".encode()).hexdigest()
DOCKER_LABEL = f"sha-{GIT_SHA[:7]}"
SYSTEM_FINGERPRINT = f"{TGI_VERSION}-{DOCKER_LABEL}"
FAIL_MAGIC = "__tgi_mock_fail__"
MARKER_NAME = ".tgi-mock-complete"
DOWNLOADS_NAME = ".tgi-mock-downloads"
DEFAULT_MAX_POSITIONS = 4096  # TGI's default cap for max_total_tokens
DEFAULT_GENERATION_LENGTH = 1024  # used when a request sends "max_new_tokens": null
VOCAB = 32000
EOS_ID, EOS_TEXT = 2, "</s>"
UNHEALTHY = {"error": "unhealthy", "error_type": "healthcheck"}
PROTECTED = {
    "/",
    "/generate",
    "/generate_stream",
    "/v1/chat/completions",
    "/v1/completions",
    "/invocations",
    "/tokenize",
    "/vertex",
}
WORDS = (
    "the model answers questions about deep learning with care and a little humor while the data "
    "flows through layers of attention that learn patterns from text so every token carries some "
    "meaning for the next one in a long chain of reasoning about language vision code and numbers "
    "researchers train networks on large clusters using many GPUs to reduce loss over many steps "
    "inference servers batch requests to keep hardware busy and answer quickly with streaming tokens"
).split()
