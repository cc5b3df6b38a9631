"""MJCF of the contextual tasks: dm_control's suite models with an edited body length.

The dynamics context is one length, edited in the suite's XML the way the Contextual Control
Suite (Rezaei-Shoshtari et al.) does it:

    cheetah  torso half-length L (default 0.5): torso capsule from -L to L along x, head at
             x = L + 0.1, back thigh attached at x = -L, front thigh at x = L
    walker   torso half-length L (default 0.3): the torso capsule's size becomes "0.07 L"
             (the hips stay where they are, as in the suite)
    finger   distal length L (default 0.16): distal capsule 0..-L, fingertip capsule
             -(L - 0.03)..-(L + 0.001), spinner moved to x = L + 0.04 and its two caps given
             half-length L - 0.07

At the default length every edited value equals the original one, so the compiled model is the
suite's model. Compiled models are cached per (domain, length): one ``MjModel`` per distinct
geometry, shared by every env copy that uses it.
"""
from __future__ import annotations

import functools

import mujoco
from lxml import etree

DEFAULT_LENGTH = {"cheetah": 0.5, "walker": 0.3, "finger": 0.16}
_XML_FILE = {"cheetah": "cheetah.xml", "walker": "walker.xml", "finger": "finger.xml"}


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _named(root, tag: str, name: str):
    found = root.findall(f".//{tag}[@name='{name}']")
    if len(found) != 1:
        raise ValueError(f"expected one <{tag} name={name!r}> in the model, found {len(found)}")
    return found[0]


def _edit(domain: str, root, length: float) -> None:
    L = float(length)
    if domain == "cheetah":
        _named(root, "geom", "torso").set("fromto", f"{_fmt(-L)} 0 0 {_fmt(L)} 0 0")
        _named(root, "geom", "head").set("pos", f"{_fmt(L + 0.1)} 0 .1")
        _named(root, "body", "bthigh").set("pos", f"{_fmt(-L)} 0 0")
        _named(root, "body", "fthigh").set("pos", f"{_fmt(L)} 0 0")
    elif domain == "walker":
        _named(root, "geom", "torso").set("size", f"0.07 {_fmt(L)}")
    elif domain == "finger":
        _named(root, "geom", "distal").set("fromto", f"0 0 0 0 0 {_fmt(-L)}")
        _named(root, "geom", "fingertip").set("fromto", f"0 0 {_fmt(-(L - 0.03))} 0 0 {_fmt(-(L + 0.001))}")
        _named(root, "body", "spinner").set("pos", f"{_fmt(L + 0.04)} 0 .4")
        for cap in ("cap1", "cap2"):
            _named(root, "geom", cap).set("size", f".04 {_fmt(L - 0.07)}")
    else:
        raise KeyError(f"unknown contextual domain {domain!r}; known: {', '.join(_XML_FILE)}")


def model_xml(domain: str, length: float | None = None) -> tuple[str, dict]:
    """(XML string, assets) of ``domain`` with the given length (None: the suite's XML as is)."""
    from dm_control.suite import common

    xml = common.read_model(_XML_FILE[domain])
    if length is None:
        return xml, common.ASSETS
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    _edit(domain, root, length)
    return etree.tostring(root, encoding="unicode"), common.ASSETS


@functools.lru_cache(maxsize=256)
def _compiled(domain: str, length_key: float) -> mujoco.MjModel:
    xml, assets = model_xml(domain, length_key)
    model = mujoco.MjModel.from_xml_string(xml, assets)
    if domain == "finger":  # dm_control's finger tasks set this on every episode start
        model.dof_damping[model.joint("hinge").dofadr[0]] = 0.03
    return model


def get_model(domain: str, length: float) -> mujoco.MjModel:
    """The cached ``MjModel`` of ``domain`` at ``length`` (rounded to 1e-9; the envs round to 1e-6 first): do not modify it."""
    return _compiled(domain, round(float(length), 9))
