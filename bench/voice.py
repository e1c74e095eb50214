"""`homestream bench voice`: what a voice request costs on this CPU.

- text-only NLU: ``domain.voice.understand`` over a list of requests to the demo home
  (``hub.sim.floorplan``), after a warm-up; p50 and p99 per utterance;
- voice -> command requested: a spoken request (espeak-ng, about 2 s) POSTed as audio/wav
  to the gateway app (in this process, ASGI; its speech-to-text pool as in production, its
  backing stores in memory), timed from the request to the reply, which comes after the
  command is produced - what the command path adds after that (Kafka, the stream worker,
  the bridge) is `homestream bench bridge`'s and `bench scenes`' to measure; p50 and p95;
- memory: resident size of the speech-to-text process (the model loaded and warm) and of
  this process's growth from the gateway app and its vocabulary.
Needs the voice extra and espeak-ng; no running stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.config import Settings

REQUESTS = (
    "turn on the kitchen lights",
    "set the bedroom to 21 degrees",
    "lock the front door",
    "dim the living room lights a bit",
    "is the front door locked",
    "open the bedroom blinds",
    "activate good night",
    "what's the temperature in the kitchen",
    "turn off all the lights",
    "make it warmer",
    "set the desk lamp to 40 percent",
    "what's the weather like",
)
SPOKEN = "turn on the living room lights please"


@dataclass
class BenchResult:
    nlu_utterances: int
    nlu_p50_ms: float
    nlu_p99_ms: float
    nlu_per_s: float
    audio_s: float
    voice_requests: int
    voice_p50_ms: float
    voice_p95_ms: float
    stt_p50_ms: float
    stt_cpu_p50_ms: float  # CPU time of the speech-to-text process (its 2 threads together)
    stt_rss_mb: float
    gateway_rss_growth_mb: float
    model: str
    beam: int
    load_average: float  # of the machine at the end (other work slows the figures)


def _rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return round(values[0], 1) if values else float("nan")
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 1)


def _demo_devices() -> list[dict]:
    from hub.sim.floorplan import demo_registry

    return demo_registry()


def run_nlu(rounds: int, say: Callable[[str], None]) -> tuple[int, float, float, float]:
    from domain.voice.understand import understand
    from domain.voice.vocabulary import Vocabulary

    scenes = [{"scene_id": "good-night", "name": "Good Night"}]
    vocab = Vocabulary.build(_demo_devices(), [], scenes)
    for text in REQUESTS:  # warm-up: hassil's caches, the grammar
        understand(text, vocab)
    times = []
    started = time.perf_counter()
    for _ in range(rounds):
        for text in REQUESTS:
            t0 = time.perf_counter()
            understand(text, vocab)
            times.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    say(f"NLU: {len(times)} utterances in {elapsed:.1f} s")
    return len(times), _pct(times, 50), _pct(times, 99), round(len(times) / elapsed, 1)


async def _voice(requests: int, settings: Settings, say: Callable[[str], None]) -> dict:
    import httpx

    from gateway.app import create_app
    from gateway.auth import issue_token
    from gateway.memory import memory_backend
    from gateway.voice import VoiceState
    from speech import synth
    from speech.audio import wav_duration_s
    from speech.stt import Transcriber

    before = _rss_mb()
    b = memory_backend(rate_limit="100000/60")
    b.voice = VoiceState(  # as the gateway's settings make it
        lambda: Transcriber(
            settings.voice_model,
            settings.voice_workers,
            settings.voice_compute_type,
            settings.voice_max_audio_s,
            beam=settings.voice_beam,
        )
    )
    b.store.add_user("bench", "password-1")
    b.store.add_home("h1", "bench")
    for d in _demo_devices():
        b.devices.add("h1", d["device_id"], d["capabilities"], name=d["name"], type=d["type"],
                      room=d["room"])  # fmt: skip
    say("starting the speech-to-text process (model load and warm-up) ...")
    stt = b.voice.stt()
    pids = await asyncio.to_thread(stt.warm)
    wav = synth.speak(SPOKEN, "en-us", 165)
    transport = httpx.ASGITransport(app=create_app(backend=b))
    totals, stts, cpus = [], [], []
    async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=60) as c:
        c.headers["Authorization"] = f"Bearer {issue_token(b.token_secret, 'bench')[0]}"
        for i in range(requests + 2):
            t0 = time.perf_counter()
            r = await c.post(
                "/v1/homes/h1/voice", content=wav, headers={"content-type": "audio/wav"}
            )
            ms = (time.perf_counter() - t0) * 1000
            body = r.json()
            if r.status_code != 200 or not body.get("commands"):
                raise RuntimeError(f"voice request failed: {r.status_code} {body}")
            if i >= 2:  # the first two warm the route
                totals.append(ms)
                stts.append(body["stt"]["stt_ms"])
                cpus.append(body["stt"]["stt_cpu_ms"])
    stt_rss = max(_rss_mb(pid) for pid in pids)
    stt.close()
    return {
        "audio_s": round(wav_duration_s(wav), 2),
        "voice_requests": len(totals),
        "voice_p50_ms": _pct(totals, 50),
        "voice_p95_ms": _pct(totals, 95),
        "stt_p50_ms": _pct(stts, 50),
        "stt_cpu_p50_ms": _pct(cpus, 50),
        "stt_rss_mb": stt_rss,
        "gateway_rss_growth_mb": round(_rss_mb() - before, 1),
        "model": stt.model,
    }


def run_bench(
    settings: Settings, rounds: int, requests: int, say: Callable[[str], None]
) -> BenchResult:
    n, p50, p99, rate = run_nlu(rounds, say)
    voice = asyncio.run(_voice(requests, settings, say))
    load = round(os.getloadavg()[0], 1)
    return BenchResult(n, p50, p99, rate, **voice, beam=settings.voice_beam, load_average=load)


def print_result(result: BenchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2))
        return
    r = result
    print(f"\nvoice bench (model {r.model}, beam {r.beam}, load average {r.load_average})")
    print(
        f"  text NLU            p50 {r.nlu_p50_ms} ms, p99 {r.nlu_p99_ms} ms "
        f"({r.nlu_utterances} utterances, {r.nlu_per_s}/s on one core)"
    )
    print(
        f"  voice -> command    p50 {r.voice_p50_ms} ms, p95 {r.voice_p95_ms} ms for a "
        f"{r.audio_s} s utterance ({r.voice_requests} requests; speech-to-text p50 "
        f"{r.stt_p50_ms} ms, its CPU time p50 {r.stt_cpu_p50_ms} ms)"
    )
    print(
        f"  memory              speech-to-text process {r.stt_rss_mb} MB resident; "
        f"gateway process +{r.gateway_rss_growth_mb} MB"
    )
