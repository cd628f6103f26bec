"""One chat completion from an OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, hosted
APIs), retried with backoff on what can pass (429, 5xx, timeouts, dropped connections); a 429 or
503 that says Retry-After is waited out as asked."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from skyscript_db.errors import ConfigError

if TYPE_CHECKING:
    import httpx

MAX_WAIT_S = 120.0  # the longest Retry-After honoured
# The endpoint or the key is wrong: every request would fail the same way, so the run stops.
FATAL = {401: "unauthorized (set the API key's environment variable)", 403: "forbidden",
         404: "not found (is the endpoint the API's base URL, e.g. http://host:8000/v1?)"}


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int  # prompt + completion, as the endpoint counted them (0 when it does not say)


class RequestFailed(Exception):
    """One prompt failed after its attempts; the run records it and goes on."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass
class ChatClient:
    endpoint: str
    model: str
    api_key: str | None = None
    max_tokens: int = 120
    timeout_s: float = 60.0
    attempts: int = 5
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        import httpx  # here, not at the top: every command would pay its import

        base = self.endpoint.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._http = httpx.Client(timeout=self.timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def complete(self, prompt: str) -> Answer:
        import httpx

        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_tokens, "temperature": 0}
        problem = ""
        for attempt in range(1, self.attempts + 1):
            wait = self.backoff_s * 2 ** (attempt - 1)
            try:
                response = self._http.post(self.url, json=body)
            except httpx.TransportError as e:  # timeouts and dropped connections
                problem = f"{type(e).__name__}: {e}"
            else:
                if response.status_code == 200:
                    return _answer(response, attempt)
                if response.status_code in FATAL:
                    raise ConfigError(f"{self.url}: HTTP {response.status_code}, "
                                      f"{FATAL[response.status_code]}")
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code != 429 and response.status_code < 500:
                    raise RequestFailed(problem, attempt)  # the request itself is refused
                wait = _retry_after(response) or wait
            if attempt < self.attempts:
                time.sleep(min(wait, MAX_WAIT_S))
        raise RequestFailed(problem, self.attempts)


def _answer(response: httpx.Response, attempt: int) -> Answer:
    try:
        reply = response.json()
        text = reply["choices"][0]["message"]["content"].strip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise RequestFailed(f"not a chat completion: {response.text[:200]}", attempt) from e
    if not text:
        raise RequestFailed("the model answered nothing", attempt)
    return Answer(text, int((reply.get("usage") or {}).get("total_tokens") or 0))


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
