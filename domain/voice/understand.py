"""Text -> what to do: the contract's intent, the devices, the commands, the answer.

The grammar (``domain.voice.grammar``) recognises the sentence against the home's slot lists
(``domain.voice.vocabulary``); when nothing matches, near names are corrected with rapidfuzz
and numbers in words turned into digits (text2num), and the sentence is tried again. Home
Assistant's intents map onto the contract's (CONTRACT.md section 5):

| Home Assistant | domain | ours |
|---|---|---|
| HassTurnOn / HassTurnOff | light, switch ... | TurnOnDevice / TurnOffDevice |
| HassTurnOn / HassTurnOff | lock | LockDevice / UnlockDevice |
| HassTurnOn / HassTurnOff, HassSetPosition | cover | SetPosition (open 100, close 0) |
| HassTurnOn | scene | ActivateScene |
| HassLightSet, HomestreamBrightnessRelative | light | SetBrightness |
| HassClimateSetTemperature, HomestreamTemperatureRelative | climate | SetTemperature |
| HassGetState, HassClimateGetTemperature | any | QueryState, answered from the state |

A request that names no device ("turn it off", "make them dimmer") acts on the session's last
devices (:class:`Context`). Anything else - not understood, or understood but not for this
home - is an interpretation with a helpful ``response``; nothing here raises for any text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hassil import recognize_best
from hassil.recognize import RecognizeResult
from rapidfuzz import fuzz, process
from text_to_num import alpha2digit

from domain.voice import grammar
from domain.voice.vocabulary import COVER_CLASSES, Device, Vocabulary

TURN_ON = "TurnOnDevice"
TURN_OFF = "TurnOffDevice"
SET_BRIGHTNESS = "SetBrightness"
SET_TEMPERATURE = "SetTemperature"
LOCK = "LockDevice"
UNLOCK = "UnlockDevice"
SET_POSITION = "SetPosition"
ACTIVATE_SCENE = "ActivateScene"
QUERY_STATE = "QueryState"
INTENTS = (
    TURN_ON,
    TURN_OFF,
    SET_BRIGHTNESS,
    SET_TEMPERATURE,
    LOCK,
    UNLOCK,
    SET_POSITION,
    ACTIVATE_SCENE,
    QUERY_STATE,
)

HELP = (
    'Sorry, I didn\'t understand that. Try "turn on the kitchen lights", "set the bedroom '
    'to 21 degrees", "lock the front door" or "is the front door locked?".'
)
FUZZY_CUTOFF = 80.0  # rapidfuzz ratio (0..100) for a near name to count as the name
# A recogniser often mishears a request's first word ("Watch the temperature in the kitchen"):
# the rest is tried alone, at this share of the confidence.
DROPPED_FIRST_WORD = 0.8
NEGATIONS = frozenset({"don't", "dont", "never", "not", "no"})  # never dropped
STEPS = {"small": 10, "normal": 20, "large": 30}  # brightness points of a relative change
TEMPERATURE_STEPS = {"small": 0.5, "normal": 1.0, "large": 2.0}
BRIGHTNESS_RANGE = (1, 100)
TEMPERATURE_RANGE = (5.0, 35.0)  # domain.capabilities' THERMOSTAT set point

# What a device must be able to do for each intent: (capability, words for "can't").
NEEDS: Mapping[str, tuple[str, str]] = {
    TURN_ON: ("ON_OFF", "be turned on"),
    TURN_OFF: ("ON_OFF", "be turned off"),
    SET_BRIGHTNESS: ("BRIGHTNESS", "be dimmed"),
    SET_TEMPERATURE: ("THERMOSTAT", "take a temperature"),
    LOCK: ("LOCK", "be locked"),
    UNLOCK: ("LOCK", "be unlocked"),
    SET_POSITION: ("POSITION", "open or close"),
}
# How a domain is called in an answer: (one, many).
DOMAIN_WORDS: Mapping[str, tuple[str, str]] = {
    "light": ("light", "lights"),
    "switch": ("plug", "plugs"),
    "climate": ("thermostat", "thermostats"),
    "lock": ("lock", "locks"),
    "cover": ("blind", "blinds"),
    "sensor": ("sensor", "sensors"),
    "binary_sensor": ("sensor", "sensors"),
    "scene": ("scene", "scenes"),
}
CLASS_WORDS: Mapping[str, tuple[str, str]] = {
    "window": ("window", "windows"),
    "door": ("door", "doors"),
    "garage": ("garage door", "garage doors"),
    "gate": ("gate", "gates"),
    "motion": ("motion sensor", "motion sensors"),
}
UNSUPPORTED = {
    "HassLightSet": "Colours by voice are not supported yet; set them on the dashboard.",
}


@dataclass(frozen=True)
class Context:
    """A conversation's memory: the devices and room of its last request."""

    devices: tuple[str, ...] = ()
    area: str | None = None
    intent: str | None = None


@dataclass(frozen=True)
class Action:
    """One command to send through the normal command path."""

    device_id: str
    capability: str
    command: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "capability": self.capability,
            "command": self.command,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True)
class Interpretation:
    """What an utterance means for this home, and what to answer."""

    text: str
    intent: str | None
    confidence: float
    slots: Mapping[str, Any]
    devices: tuple[str, ...]
    parameters: Mapping[str, Any]
    actions: tuple[Action, ...]
    response: str
    context: Context
    scene_id: str | None = None
    matched: str | None = None  # the grammar's intent (HassTurnOn ...), for logs

    @property
    def acts(self) -> bool:
        return bool(self.actions) or self.scene_id is not None


@dataclass(frozen=True)
class Match:
    """The grammar's reading of a sentence, flattened."""

    intent: str
    slots: dict[str, Any]  # slot -> value
    spoken: dict[str, str]  # slot -> the words that filled it
    response: str | None
    confidence: float


# -- recognition ---------------------------------------------------------------------------
_PUNCT = re.compile(r"[,!?;:\"]|(?<!\d)\.|\.(?!\d)")


def clean(text: str) -> str:
    """Lower case without punctuation, degrees spelled out (what Whisper writes: "21°C.")."""
    t = text.lower().replace("℃", "°").replace("°c", "°").replace("°", " degrees")
    t = t.replace("\u2019", "'")  # a typographic apostrophe
    return " ".join(_PUNCT.sub(" ", t).split())


def _recognize(text: str, vocab: Vocabulary) -> RecognizeResult | None:
    return recognize_best(
        text,
        grammar.intents(),
        slot_lists=vocab.slot_lists,
        language=grammar.LANGUAGE,
        best_slot_name="name",
    )


def _flatten(result: RecognizeResult, confidence: float) -> Match:
    slots: dict[str, Any] = {}
    spoken: dict[str, str] = {}
    for name, entity in result.entities.items():
        slots[name] = entity.value
        if entity.text:
            spoken[name] = entity.text.strip()
    for key in ("domain", "device_class"):
        if key not in slots and key in result.context:
            value = result.context[key]
            if isinstance(value, str):
                slots[key] = value
    return Match(result.intent.name, slots, spoken, result.response, confidence)


def correct(text: str, vocab: Vocabulary) -> tuple[str, float]:
    """Near names replaced by the home's own (longest first): the text and the worst score
    (100 when nothing changed)."""
    words = text.split()
    phrases = list(vocab.phrases)
    worst = 100.0
    if not phrases:
        return text, worst
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(4, len(words) - i), 0, -1):
            window = " ".join(words[i : i + n])
            if len(window) < 4:
                continue
            found = process.extractOne(
                window, phrases, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
            )
            if found is not None and abs(len(found[0].split()) - n) <= 1:
                out.append(found[0])
                worst = min(worst, float(found[1]))
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return " ".join(out), worst


def recognize(text: str, vocab: Vocabulary) -> Match | None:
    """The best reading of ``text``: as said, then with numbers in digits, then with near
    names corrected (its confidence the correction's score), then without its first word."""
    said = clean(text)
    if not said:
        return None
    tries = [(said, 1.0)]
    digits = clean(alpha2digit(said, "en"))
    if digits != said:
        tries.append((digits, 1.0))
    for candidate in (said, digits):
        fixed, score = correct(candidate, vocab)
        if fixed != candidate:
            tries.append((fixed, score / 100))
    words = said.split()
    if len(words) >= 4 and words[0] not in NEGATIONS:
        tries.append((" ".join(words[1:]), DROPPED_FIRST_WORD))
    for candidate, confidence in tries:
        result = _recognize(candidate, vocab)
        if result is not None:
            return _flatten(result, confidence)
    return None


def best_reading(hypotheses: Sequence[str], vocab: Vocabulary) -> str:
    """Of a speech recogniser's readings (best first), the first this home's grammar
    understands; the recogniser's best when none is."""
    for text in hypotheses:
        if recognize(text, vocab) is not None:
            return text
    return hypotheses[0] if hypotheses else ""


def unsure_unlock(meant: Interpretation, hypotheses: Sequence[str]) -> Interpretation:
    """An unlock heard, not said for sure, does nothing: from speech, UnlockDevice acts only
    when it is the recogniser's best reading and understood as it was heard (no near names,
    no dropped word); otherwise the answer asks for it again."""
    if meant.intent != UNLOCK or not meant.actions:
        return meant
    if hypotheses and hypotheses[0] == meant.text and meant.confidence >= 1.0:
        return meant
    return replace(
        meant,
        actions=(),
        response="For safety I don't unlock on a request I may have misheard: please say it again.",
    )


# -- resolution ----------------------------------------------------------------------------
def _words(domain: str, device_class: str | None, n: int) -> str:
    one, many = CLASS_WORDS.get(device_class or "") or DOMAIN_WORDS.get(
        domain, ("device", "devices")
    )
    return one if n == 1 else many


def _in_room(room: str | None) -> str:
    return f" in the {room.lower()}" if room else ""


def _label(devices: Sequence[Device]) -> str:
    """One device by name; several as "3 lights in the living room"."""
    subject, where = _subject(devices)
    return subject + where


def _subject(devices: Sequence[Device]) -> tuple[str, str]:
    """("Kitchen Lights", "") or ("3 lights", " in the living room")."""
    if len(devices) == 1:
        return devices[0].name, ""
    domains = {d.domain for d in devices}
    rooms = {d.room for d in devices}
    word = _words(domains.pop(), None, 2) if len(domains) == 1 else "devices"
    room = rooms.pop() if len(rooms) == 1 else None
    return f"{len(devices)} {word}", _in_room(room)


def _ok(devices: Sequence[Device], said: str) -> str:
    """ "OK, 3 lights on in the living room." """
    subject, where = _subject(devices)
    return f"OK, {subject} {said}{where}."


def _match_class(device: Device, wanted: str | None) -> bool:
    if wanted is None:
        return True
    if device.domain == "cover":
        return wanted in COVER_CLASSES and device.device_class == "blind"
    return device.device_class == wanted


@dataclass(frozen=True)
class Resolved:
    devices: tuple[Device, ...] = ()
    scene: tuple[str, str] | None = None  # (scene_id, name)
    missing: str | None = None  # why nothing was found (an answer)


def resolve(m: Match, vocab: Vocabulary, ctx: Context, domain: str | None) -> Resolved:
    """The devices (or scene) the request means."""
    area = m.slots.get("area")
    room = area if isinstance(area, str) else None
    wanted_class = m.slots.get("device_class")
    wanted_class = wanted_class if isinstance(wanted_class, str) else None
    key = m.slots.get("name")
    if isinstance(key, str) and key in vocab.targets:
        target = vocab.targets[key]
        if target.scene_id is not None:
            return Resolved(scene=(target.scene_id, target.label))
        found = vocab.ordered(target.devices)
        if room is not None:
            found = [d for d in found if d.room == room]
            if not found:
                return Resolved(missing=f"There is no {target.label}{_in_room(room)}.")
        return Resolved(tuple(found))
    if m.slots.get("pronoun"):
        found = vocab.ordered(ctx.devices)
        if not found:
            return Resolved(missing='Which device do you mean? Name it, e.g. "the kitchen lights".')
        return Resolved(tuple(found))
    if domain is None:
        return Resolved(missing=HELP)
    found = [d for d in vocab.of_domain(domain, room) if _match_class(d, wanted_class)]
    if not found:
        what = _words(domain, wanted_class, 1)
        where = _in_room(room) if room else " in this home"
        return Resolved(missing=f"There is no {what}{where}.")
    return Resolved(tuple(found))


# -- intents -------------------------------------------------------------------------------
def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return max(bounds[0], min(bounds[1], value))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _degrees(value: float) -> str:
    return f"{_whole(round(value, 1))}°"


def _plan(m: Match) -> tuple[str | None, str | None]:
    """(our intent, the domain the request is about) of a match; intent None = not ours."""
    domain = m.slots.get("domain")
    domain = domain if isinstance(domain, str) else None
    if m.intent in ("HassTurnOn", "HassTurnOff"):
        on = m.intent == "HassTurnOn"
        if domain == "lock":
            return (LOCK if on else UNLOCK), domain
        if domain == "cover":
            return SET_POSITION, domain
        if domain == "scene":
            return (ACTIVATE_SCENE if on else None), domain
        return (TURN_ON if on else TURN_OFF), domain
    if m.intent == "HassLightSet":
        return (SET_BRIGHTNESS if "brightness" in m.slots else None), domain or "light"
    if m.intent == "HomestreamBrightnessRelative":
        return SET_BRIGHTNESS, domain or "light"
    if m.intent in ("HassClimateSetTemperature", "HomestreamTemperatureRelative"):
        return SET_TEMPERATURE, domain or "climate"
    if m.intent == "HassSetPosition":
        return SET_POSITION, domain or "cover"
    if m.intent in ("HassGetState", "HassClimateGetTemperature"):
        return QUERY_STATE, domain
    return None, domain


def _brightness_of(d: Device) -> float:
    b = _number(d.state.get("brightness"))
    if b is not None:
        return b
    return 100.0 if d.state.get("powerState") == "ON" else 0.0


def _target_of(d: Device) -> float:
    for attr in ("targetTemperature", "temperature"):
        t = _number(d.state.get(attr))
        if t is not None:
            return t
    return 20.0


def _actions(
    intent: str, m: Match, devices: Sequence[Device]
) -> tuple[list[Action], dict[str, Any], str]:
    """The commands, the request's parameters and the answer for a command intent."""
    ids = [d.device_id for d in devices]
    if intent in (TURN_ON, TURN_OFF):
        on = intent == TURN_ON
        acts = [Action(i, "ON_OFF", "turnOn" if on else "turnOff") for i in ids]
        return acts, {}, _ok(devices, "on" if on else "off")
    if intent in (LOCK, UNLOCK):
        verb = "lock" if intent == LOCK else "unlock"
        return [Action(i, "LOCK", verb) for i in ids], {}, _ok(devices, verb + "ed")
    if intent == SET_POSITION:
        position = _number(m.slots.get("position"))
        if position is None:
            opening = m.intent == "HassTurnOn"
            cmd = "open" if opening else "close"
            acts = [Action(i, "POSITION", cmd) for i in ids]
            said = _ok(devices, "opening" if opening else "closing")
            return acts, {"position": 100 if opening else 0}, said
        p = int(_clamp(position, (0, 100)))
        acts = [Action(i, "POSITION", "setPosition", {"position": p}) for i in ids]
        return acts, {"position": p}, _ok(devices, f"to {p}%")
    if intent == SET_BRIGHTNESS and m.intent == "HomestreamBrightnessRelative":
        amount = _number(m.slots.get("brightness"))
        step = int(amount) if amount is not None else STEPS.get(str(m.slots.get("step")), 20)
        sign = 1 if m.slots.get("direction") == "up" else -1
        acts = []
        for d in devices:
            value: int | float = int(_clamp(_brightness_of(d) + sign * step, BRIGHTNESS_RANGE))
            acts.append(Action(d.device_id, "BRIGHTNESS", "setBrightness", {"brightness": value}))
        verb = "brighter" if sign > 0 else "dimmer"
        first = acts[0].parameters["brightness"]
        return acts, {"brightness_change": sign * step}, _ok(devices, f"{verb} ({first}%)")
    if intent == SET_BRIGHTNESS:
        b = int(_clamp(_number(m.slots.get("brightness")) or 0, (0, 100)))
        acts = [Action(i, "BRIGHTNESS", "setBrightness", {"brightness": b}) for i in ids]
        return acts, {"brightness": b}, _ok(devices, f"at {b}%")
    if intent == SET_TEMPERATURE and m.intent == "HomestreamTemperatureRelative":
        amount = _number(m.slots.get("temperature"))
        degrees = (
            amount if amount is not None else TEMPERATURE_STEPS.get(str(m.slots.get("step")), 1.0)
        )
        sign = 1 if m.slots.get("direction") == "up" else -1
        acts = []
        for d in devices:
            value = _whole(_clamp(_target_of(d) + sign * degrees, TEMPERATURE_RANGE))
            acts.append(Action(d.device_id, "THERMOSTAT", "setTemperature", {"temperature": value}))
        first = float(acts[0].parameters["temperature"])
        verb = "up" if sign > 0 else "down"
        change = {"temperature_change": _whole(sign * degrees)}
        return acts, change, _ok(devices, f"{verb} to {_degrees(first)}")
    t = _whole(_number(m.slots.get("temperature")) or 0.0)
    acts = [Action(i, "THERMOSTAT", "setTemperature", {"temperature": t}) for i in ids]
    return acts, {"temperature": t}, _ok(devices, f"set to {_degrees(float(t))}")


def _check_range(intent: str, m: Match) -> str | None:
    """An absolute value the devices cannot take, as an answer."""
    if intent == SET_TEMPERATURE and m.intent == "HassClimateSetTemperature":
        t = _number(m.slots.get("temperature"))
        lo, hi = TEMPERATURE_RANGE
        if t is not None and not lo <= t <= hi:
            return (
                f"{_degrees(t)} is out of range: thermostats take {_degrees(lo)} to {_degrees(hi)}."
            )
    return None


# -- questions -------------------------------------------------------------------------------
def _is_state(d: Device, asked: str) -> bool | None:
    """Whether the device is in the asked state (HA's words: on/off, locked, open ...);
    None when it has not reported it."""
    s = d.state
    if d.domain == "lock":
        v = s.get("lockState")
        return None if v is None else str(v).lower() == asked
    if d.domain == "cover":
        p = _number(s.get("position"))
        if p is None:
            return None
        return (p > 0) == (asked in ("open", "opening"))
    if d.domain == "binary_sensor":
        if "contact" in s:
            return bool(s["contact"] == "open") == (asked == "on")
        if "motion" in s:
            return bool(s["motion"]) == (asked == "on")
        return None
    v = s.get("powerState")
    return None if v is None else str(v).lower() == asked


def _state_words(asked: str, domain: str) -> str:
    if domain == "binary_sensor":
        return {"on": "open", "off": "closed"}.get(asked, asked)
    return asked


def describe(d: Device) -> str:
    """One device's state in a sentence."""
    s = d.state
    if not s:
        return f"{d.name} has not reported its state yet."
    if d.domain == "lock" and "lockState" in s:
        return f"{d.name} is {str(s['lockState']).lower()}."
    if d.domain == "cover" and _number(s.get("position")) is not None:
        p = int(_number(s.get("position")) or 0)
        return f"{d.name} is {'closed' if p == 0 else f'{p}% open'}."
    if d.domain == "climate":
        target = _number(s.get("targetTemperature"))
        now = _number(s.get("temperature"))
        parts = []
        if target is not None:
            parts.append(f"set to {_degrees(target)}")
        if now is not None:
            parts.append(f"it is {_degrees(now)}")
        return f"{d.name} is {' and '.join(parts)}." if parts else f"{d.name} has no reading yet."
    if "powerState" in s:
        on = s["powerState"] == "ON"
        b = _number(s.get("brightness"))
        extra = f" at {int(b)}%" if on and b is not None else ""
        return f"{d.name} is {'on' if on else 'off'}{extra}."
    if "contact" in s:
        return f"{d.name} is {s['contact']}."
    if "motion" in s:
        return f"{d.name} {'detects motion' if s['motion'] else 'detects no motion'}."
    if _number(s.get("temperature")) is not None:
        return f"{d.name} reads {_degrees(float(s['temperature']))}."
    return f"{d.name} has no state I can describe."


def _names(devices: Sequence[Device]) -> str:
    names = [d.name for d in devices]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _measure(devices: Sequence[Device], attribute: str, room: str | None) -> str:
    values = [v for d in devices if (v := _number(d.state.get(attribute))) is not None]
    where = _in_room(room)
    if not values:
        return f"No {attribute_word(attribute)} reading{where} yet."
    mean = sum(values) / len(values)
    if attribute == "humidity":
        return f"The humidity{where} is {_whole(round(mean))}%."
    if attribute == "targetTemperature":
        return f"The thermostat{where} is set to {_degrees(mean)}."
    return f"It's {_degrees(mean)}{where}."


def attribute_word(attribute: str) -> str:
    return {"targetTemperature": "thermostat", "temperature": "temperature"}.get(
        attribute, attribute
    )


def answer(
    m: Match, found: Sequence[Device], room: str | None, domain: str | None
) -> tuple[str, dict[str, Any], list[Device]]:
    """The answer to a question, its parameters and the devices it is about."""
    if m.intent == "HassClimateGetTemperature" or m.response == "measure":
        attribute = str(m.slots.get("attribute") or "temperature")
        with_it = [d for d in found if attribute in d.state] or list(found)
        return _measure(with_it, attribute, room), {"attribute": attribute}, with_it
    if m.slots.get("attribute") == "brightness" or m.response == "one" or "state" not in m.slots:
        return " ".join(describe(d) for d in found), {}, list(found)
    asked = str(m.slots["state"])
    params = {"state": asked}
    known = [(d, r) for d in found if (r := _is_state(d, asked)) is not None]
    word = _state_words(asked, found[0].domain)
    if not known:
        return (
            f"{_label(found)} {'has' if len(found) == 1 else 'have'} not reported yet.",
            params,
            list(found),
        )
    yes = [d for d, r in known if r]
    no = [d for d, r in known if not r]
    if m.response == "one_yesno" or len(found) == 1:
        d = found[0]
        if len(found) == 1:
            return (
                ("Yes, " if yes else "No, ") + describe(d),
                params,
                [d],
            )
    kind = _words(found[0].domain, None, 2)
    where = _in_room(room)
    if m.response == "all":
        if not no:
            return f"Yes, all {kind}{where} are {word}.", params, list(found)
        return (
            f"No, {_names(no)} {'is' if len(no) == 1 else 'are'} not {word}.",
            params,
            list(found),
        )
    if m.response == "how_many":
        return (
            f"{len(yes)} {_words(found[0].domain, None, len(yes))}{where} "
            f"{'is' if len(yes) == 1 else 'are'} {word}.",
            params,
            list(found),
        )
    if m.response == "which":
        if not yes:
            return f"No {_words(found[0].domain, None, 1)}{where} is {word}.", params, list(found)
        return f"{_names(yes)} {'is' if len(yes) == 1 else 'are'} {word}.", params, list(found)
    if not yes:
        return f"No, no {_words(found[0].domain, None, 1)}{where} is {word}.", params, list(found)
    return f"Yes, {_names(yes)} {'is' if len(yes) == 1 else 'are'} {word}.", params, list(found)


# -- the entry point -------------------------------------------------------------------------
def understand(text: str, vocab: Vocabulary, ctx: Context | None = None) -> Interpretation:
    """What ``text`` means in this home (given the session's context): never raises for text."""
    ctx = ctx or Context()
    m = recognize(text, vocab)
    if m is None:
        return Interpretation(text, None, 0.0, {}, (), {}, (), HELP, ctx)
    slots = _public_slots(m)
    intent, domain = _plan(m)
    if intent is None:
        why = UNSUPPORTED.get(m.intent) or (
            "I can control devices, set brightness, temperature and blinds, lock doors, run "
            "scenes and answer about your devices; that one is not something I can do."
        )
        return Interpretation(
            text, None, m.confidence, slots, (), {}, (), why, ctx, matched=m.intent
        )
    base = Interpretation(text, intent, m.confidence, slots, (), {}, (), "", ctx, matched=m.intent)
    if m.intent == "HassClimateGetTemperature":
        domain = None  # any device that measures temperature
    r = resolve(m, vocab, ctx, domain if intent != QUERY_STATE or domain else "sensor")
    room = m.slots.get("area") if isinstance(m.slots.get("area"), str) else None
    if (intent == QUERY_STATE and r.missing and m.intent == "HassClimateGetTemperature") or (
        intent == QUERY_STATE and m.response == "measure" and room is not None
    ):
        r = Resolved(tuple(vocab.in_room(room)))
    if r.missing is not None:
        return replace(base, response=r.missing)
    if intent == ACTIVATE_SCENE:
        if r.scene is None:
            return replace(base, response='Which scene? Say e.g. "activate good night".')
        scene_id, name = r.scene
        return replace(
            base,
            parameters={"scene_id": scene_id},
            scene_id=scene_id,
            response=f"OK, running {name}.",
            context=Context((), room, intent),
        )
    devices = list(r.devices)
    if intent == QUERY_STATE:
        if not devices:
            return replace(base, response="I found nothing to answer about.")
        said, params, about = answer(m, devices, room, domain)
        ids = tuple(d.device_id for d in about)
        return replace(
            base, devices=ids, parameters=params, response=said, context=Context(ids, room, intent)
        )
    capability, cannot = NEEDS[intent]
    able = [d for d in devices if capability in d.capabilities]
    if not able:
        return replace(base, devices=(), response=f"{_label(devices)} can't {cannot}.")
    problem = _check_range(intent, m)
    if problem is not None:
        return replace(base, devices=tuple(d.device_id for d in able), response=problem)
    acts, params, said = _actions(intent, m, able)
    ids = tuple(d.device_id for d in able)
    return replace(
        base,
        devices=ids,
        parameters=params,
        actions=tuple(acts),
        response=said,
        context=Context(ids, room or ctx.area, intent),
    )


def _public_slots(m: Match) -> dict[str, Any]:
    """The slots as the API shows them: values, and for a name the words said."""
    out: dict[str, Any] = {}
    for k, v in m.slots.items():
        if k == "name":
            out[k] = m.spoken.get(k, "")
        elif k == "pronoun":
            out[k] = True
        elif isinstance(v, float) and v.is_integer():
            out[k] = int(v)
        elif isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
    return out


def labelled(interpretations: Iterable[Interpretation]) -> list[dict[str, Any]]:
    """Interpretations as plain dicts (the accuracy report's rows)."""
    return [
        {
            "text": i.text,
            "intent": i.intent,
            "devices": sorted(i.devices),
            "parameters": dict(i.parameters),
        }
        for i in interpretations
    ]
