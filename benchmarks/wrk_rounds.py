"""wrk, the HTTP load generator that benchmarks/serve_load.py drives: its Lua scripts and one
round of it, parsed (wrk prints a report, not JSON).

The scripts read the PNG to post from $LOAD_PNG. LUA posts it to /api/predict; LUA_FEEDBACK
makes a share of the requests corrections; LUA_HOSTILE a share malformed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open(os.getenv("LOAD_PNG"), "rb")
wrk.body = f:read("*a")
f:close()
"""


def _opening(share_variable: str) -> str:
    """The feedback and hostile scripts' first lines: the PNG read from $LOAD_PNG, the share of
    special requests from `share_variable`, and the multipart boundary."""
    return (
        '\nlocal f = io.open(os.getenv("LOAD_PNG"), "rb")\n'
        'local png = f:read("*a")\n'
        "f:close()\n"
        f'local share = tonumber(os.getenv("{share_variable}"))\n'
        'local boundary = "lenet5loadboundary"'
    )


# With --feedback-share, that share of the requests are corrections (POST /api/feedback, a
# multipart body with the PNG and a label); the 201s are counted to compare with the rows stored.
LUA_FEEDBACK = (
    _opening("LOAD_FEEDBACK_SHARE")
    + r"""
local form = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\n7\r\n"
  .. "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"file\"; "
  .. "filename=\"d.png\"\r\nContent-Type: image/png\r\n\r\n" .. png .. "\r\n--" .. boundary
  .. "--\r\n"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) acked = 0 end
function request()
  if math.random() < share then
    return wrk.format("POST", "/api/feedback",
      {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, form)
  end
  return wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"}, png)
end
function response(status, headers, body)
  if status == 201 then acked = acked + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("acked") end
  io.write("ACKED " .. total .. "\n")
end
"""
)


# With --malformed-share, that share of the requests are malformed, each kind in turn; the
# answers are counted by status, and a 200 whose digit is not the PNG's 7 counts as wrong.
LUA_HOSTILE = (
    _opening("LOAD_MALFORMED_SHARE")
    + r"""
local bad = {
  wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"},
    png:sub(1, math.floor(#png / 2))),                                  -- truncated image
  "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
    .. "Content-Length: 999999999\r\n\r\n",                              -- huge declared length
  wrk.format("POST", "/api/predict", {["Content-Type"] = "text/plain"}, "seven"),  -- wrong type
  wrk.format("POST", "/api/predict", {["Content-Type"] = "application/json"},
    '{"pixels": [[0.5, '),                                              -- bad JSON
  wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"},
    string.rep("\0\1\2\3", 256)),                                       -- not an image
  wrk.format("POST", "/api/predict",
    {["Content-Type"] = "multipart/form-data; boundary=" .. boundary},
    "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--"
    .. boundary .. "--\r\n"),                                           -- no file field
  wrk.format("POST", "/api/feedback", {["Content-Type"] = "application/json"},
    '{"label": 12}'),                                                   -- no pixels, bad label
}
local good = wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"}, png)
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) sent_bad, sent_good, right, wrong, s4xx, s5xx, k = 0, 0, 0, 0, 0, 0, 0 end
function request()
  if math.random() < share then
    k = k % #bad + 1
    sent_bad = sent_bad + 1
    return bad[k]
  end
  sent_good = sent_good + 1
  return good
end
function response(status, headers, body)
  if status == 200 then
    if body:find('"digit":7', 1, true) then right = right + 1 else wrong = wrong + 1 end
  elseif status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1 end
end
function done(summary, latency, requests)
  for _, key in ipairs({"sent_bad", "sent_good", "right", "wrong", "s4xx", "s5xx"}) do
    local total = 0
    for _, t in ipairs(threads) do total = total + t:get(key) end
    io.write("HOSTILE " .. key .. " " .. total .. "\n")
  end
end
"""
)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]


def run_round(
    url: str,
    script: Path,
    png: Path,
    seconds: int,
    connections: int,
    threads: int,
    share: float = 0.0,
    malformed: float = 0.0,
) -> dict:
    """One round of wrk; its figures."""
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        env={
            **os.environ,
            "LOAD_PNG": str(png),
            "LOAD_FEEDBACK_SHARE": str(share),
            "LOAD_MALFORMED_SHARE": str(malformed),
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_report(out)


def parse_report(out: str) -> dict:
    """wrk's printed report (with the scripts' ACKED and HOSTILE lines) -> its figures."""
    done = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert done and rate, out
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.M)
    acked = re.search(r"^ACKED (\d+)$", out, re.M)
    return {
        "hostile": {k: int(v) for k, v in re.findall(r"^HOSTILE (\w+) (\d+)$", out, re.M)},
        "acknowledged": int(acked.group(1)) if acked else 0,
        "requests": int(done.group(1)),
        "requests_per_s": float(rate.group(1)),
        "latency_ms": {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M)},
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
        "output": out,
    }
