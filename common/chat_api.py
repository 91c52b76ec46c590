"""One chat completion from any OpenAI-compatible endpoint, with the standard library only.

Used by the data teacher (generate_data.py --teacher-url) and the evaluation judge
(evaluate.py --judge-url). `flag` names the command-line flag in error messages, so a user
knows which URL failed.
"""
import json
import urllib.error
import urllib.request

from common.errors import PhysloraError


def chat_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def check_reachable(url: str, flag: str, timeout: float = 10.0) -> None:
    """Refuse an endpoint nothing answers at, before the work whose results it must grade. Any HTTP answer to a
    GET (405, 404, ...) means a server is there."""
    try:
        with urllib.request.urlopen(urllib.request.Request(chat_url(url), method="GET"), timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise PhysloraError(f"{flag} {url}: cannot reach the server ({err}); is it running?") from None


def chat(url: str, model: str, api_key: str, system: str, prompt: str, timeout: float, flag: str) -> str:
    """The reply text; HTTP and network failures become one-line user errors."""
    body = json.dumps({"model": model, "temperature": 0,
                       "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}]})
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(chat_url(url), data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read().decode("utf-8"))
        return reply["choices"][0]["message"]["content"]
    except urllib.error.HTTPError as err:
        raise PhysloraError(f"{flag} {url}: HTTP {err.code} {err.reason}; check the URL, the model name "
                            f"and the API key variable") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise PhysloraError(f"{flag} {url}: cannot reach the server ({err}); is it running?") from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise PhysloraError(f"{flag} {url}: the reply is not an OpenAI-style chat completion") from None
