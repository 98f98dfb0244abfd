"""Scripted LIBERO experts that read privileged simulator state, as a chunk-emitting Policy.

LIBERO ships demonstrations, not experts; the harness needs an expert that can act from *any*
state (after a late or stale chunk), so this one is written against the simulator: it reads the
goal predicate from the task's BDDL (``env.parsed_problem["goal_state"]``), the object and target
poses from MuJoCo, and commands LIBERO's OSC_POSE action (xyz delta, axis-angle delta, gripper).

The controller keeps no memory: every tick it works out the phase of the task from the state
alone (is the object held? is it above the target? is it resting on it?). A look-ahead can
therefore run it on a copy of the physics and restore the physics alone, and a chunk executed
late or partly still leaves the controller consistent with the world it sees next.

Covered goals (see docs/libero_experts.md for the measured success):

* ``in obj region`` and ``on obj target`` where ``obj`` is a free object (pick and place): the
  object is grasped from above (across its narrow side, or by the rim when it is wider than the
  gripper), carried above the target (the region's site or the target body), lowered until it
  touches the target or its support, released, and the hand retreats upward.
* ``turnon`` of the stove: the closed fingers press on the knob behind its handle and drag it
  round.

An object farther from the arm's shoulder than the hand reaches (knocked off the table) is not
chased: the expert holds still rather than drive the arm into its joint limits.

Any other predicate (``open`` a drawer, ``close``, ...) raises a ValueError naming the covered
ones. An ``in``/``on`` goal the pick and place cannot reach (a closed drawer's inside, the
tilted wine rack) is attempted and fails; the docs list which tasks are covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import mujoco
import numpy as np

from rapid_env.policy import PolicyInput

ACTION_DIM = 7
POS_SCALE = 0.05  # metres per unit action: robosuite's OSC_POSE output_max for xyz
ROT_SCALE = 0.5  # radians per unit action: its output_max for the axis-angle delta
GRIPPER_MAX = 0.08  # Panda finger opening when fully open (two slides of 0.04 m)
OPEN, CLOSE = -1.0, 1.0
REACH = 0.9  # metres from the Panda's shoulder (joint 2) the grip site reaches pointing down


class _Env(Protocol):
    """The parts of LIBERO's problem env (a robosuite env) the controller reads."""

    sim: Any
    robots: Any
    parsed_problem: dict[str, Any]
    obj_body_id: dict[str, int]
    object_sites_dict: dict[str, Any]
    object_states_dict: dict[str, Any]

    def get_object(self, name: str) -> Any: ...  # noqa: D102

    def check_contact(self, geoms_1: Any, geoms_2: Any = None) -> bool: ...  # noqa: D102

    def _check_grasp(self, gripper: Any, object_geoms: Any) -> bool: ...


@dataclass(frozen=True)
class Box:
    """An object's world-axis bounding box from its collision geoms."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def center(self) -> np.ndarray:
        """Middle of the box."""
        return (self.lo + self.hi) / 2


def _raw(env: _Env) -> tuple[Any, Any]:
    """The raw ``mujoco.MjModel`` / ``MjData`` behind robosuite's binding."""
    return env.sim.model._model, env.sim.data._data


_GEOM_CACHE: list[Any] = [None, {}]  # [the model the entries belong to, {body id: geom ids}]


def _collision_geoms(m: Any, bid: int) -> list[int]:
    """Collision geoms of the tree rooted at ``bid``'s root, cached for the current model.

    Only the last model's lists are kept (robosuite rebuilds the model on a hard reset); the
    entry holds the model itself, so its identity cannot be reused while it is cached.
    """
    if _GEOM_CACHE[0] is not m:
        _GEOM_CACHE[0], _GEOM_CACHE[1] = m, {}
    cache: dict[int, list[int]] = _GEOM_CACHE[1]
    if bid not in cache:
        root = m.body_rootid[bid]
        cache[bid] = [
            g for g in range(m.ngeom)
            if m.body_rootid[m.geom_bodyid[g]] == root
            and (m.geom_contype[g] != 0 or m.geom_conaffinity[g] != 0)
        ]
    return cache[bid]


def collision_box(env: _Env, body: str) -> tuple[Box, np.ndarray]:
    """World bounding box of ``body``'s collision geoms, and the box in the body's own frame.

    The local box tells a flat box's long side from its short side whatever its yaw; the world
    box gives the heights to grasp at and to carry over.
    """
    m, d = _raw(env)
    bid = env.obj_body_id[body]
    rot, pos = d.xmat[bid].reshape(3, 3), d.xpos[bid]
    geoms = _collision_geoms(m, bid)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    pts = [
        d.geom_xpos[g] + (m.geom_aabb[g, :3] + signs * m.geom_aabb[g, 3:]) @ d.geom_xmat[g].reshape(
            3, 3
        ).T
        for g in geoms
    ]
    world = np.concatenate(pts)
    local = (world - pos) @ rot
    return Box(world.min(0), world.max(0)), np.stack([local.min(0), local.max(0)])


def _yaw_error(finger_axis: np.ndarray, want: np.ndarray) -> float:
    """Signed yaw (rad) turning the finger axis onto ``want`` (both horizontal), modulo pi.

    The fingers are symmetric, so the axis and its opposite are the same grasp: the error is
    wrapped into [-pi/2, pi/2] and the hand never turns more than a quarter turn.
    """
    a = np.arctan2(finger_axis[1], finger_axis[0])
    b = np.arctan2(want[1], want[0])
    return float((b - a + np.pi / 2) % np.pi - np.pi / 2)


def _axis_angle(rot: np.ndarray) -> np.ndarray:
    """Axis-angle vector of a rotation matrix (world frame, as OSC_POSE's delta expects)."""
    cos = np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # a half turn: any axis of the symmetric part
        w, v = np.linalg.eigh((rot + np.eye(3)) / 2)
        return v[:, -1] * angle
    return axis / norm * angle


def _rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# The Panda hand and fingers as boxes in the grip-site frame: (along the finger axis,
# across it, height above the grip site) half-extents and centre height. Measured from the
# robosuite Panda gripper's collision geoms.
_HAND_PARTS = ((0.11, 0.035, 0.026, 0.124), (0.05, 0.012, -0.012, 0.026))


def _hand_overlap(point: np.ndarray, axis: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Volume by which the hand, closed at ``point`` with fingers along ``axis``, hits others.

    ``lo``/``hi`` (N, 3) are the other objects' geom boxes; each is taken in the hand's frame
    as the box around its corners, so the overlap is a little conservative.
    """
    v = np.array([-axis[1], axis[0], 0.0])
    xs = np.stack([lo[:, 0], hi[:, 0], lo[:, 0], hi[:, 0]], axis=1) - point[0]
    ys = np.stack([lo[:, 1], lo[:, 1], hi[:, 1], hi[:, 1]], axis=1) - point[1]
    cu = xs * axis[0] + ys * axis[1]
    cv = xs * v[0] + ys * v[1]
    total = 0.0
    for half_u, half_v, z_lo, z_hi in _HAND_PARTS:
        ou = np.minimum(cu.max(1), half_u) - np.maximum(cu.min(1), -half_u)
        ov = np.minimum(cv.max(1), half_v) - np.maximum(cv.min(1), -half_v)
        oz = np.minimum(hi[:, 2], point[2] + z_hi) - np.maximum(lo[:, 2], point[2] + z_lo)
        total += float(np.sum(np.clip(ou, 0, None) * np.clip(ov, 0, None) * np.clip(oz, 0, None)))
    return total


def obstacle_boxes(env: _Env, exclude: str) -> tuple[np.ndarray, np.ndarray]:
    """World boxes (lo, hi), one per collision geom, of every object and fixture but ``exclude``.

    Per geom rather than per object, so a drawer's walls and a cabinet's top are separate
    obstacles with free space between them.
    """
    m, d = _raw(env)
    geoms = [
        g for name, bid in env.obj_body_id.items() if name != exclude
        for g in _collision_geoms(m, bid)
    ]
    if not geoms:
        return np.zeros((0, 3)), np.zeros((0, 3))
    idx = np.array(geoms)
    centre = d.geom_xpos[idx] + np.einsum("nij,nj->ni", d.geom_xmat[idx].reshape(-1, 3, 3),
                                          m.geom_aabb[idx, :3])
    half = np.einsum("nij,nj->ni", np.abs(d.geom_xmat[idx].reshape(-1, 3, 3)),
                     m.geom_aabb[idx, 3:])
    return centre - half, centre + half


@dataclass(frozen=True)
class Goal:
    """One goal predicate of the task, e.g. ``("in", "ketchup_1", "basket_1_contain_region")``."""

    predicate: str
    subject: str
    target: str | None


def parse_goal(env: _Env) -> Goal:
    """The task's single goal predicate; LIBERO-Object/-Spatial/-Goal each have exactly one."""
    states = env.parsed_problem["goal_state"]
    if len(states) != 1:
        raise ValueError(f"the LIBERO expert handles one goal predicate, got {states!r}")
    s = [str(x).lower() for x in states[0]]
    return Goal(s[0], s[1], s[2] if len(s) > 2 else None)


SUPPORTED = ("in", "on", "turnon")


class LiberoScriptedController:
    """Per-tick scripted controller for one LIBERO task, reading state from the simulator.

    ``action(env)`` returns the 7-D OSC_POSE action for the current state of ``env`` (the LIBERO
    problem env, ``ControlEnv(...).env``). It holds no episode memory (see the module docstring),
    so ``get_state``/``set_state`` exist only for symmetry with stateful controllers and carry
    nothing.
    """

    def __init__(self, pos_gain: float = 1.0, rot_gain: float = 1.0) -> None:
        self.pos_gain = pos_gain
        self.rot_gain = rot_gain
        self.phase = "start"  # the last tick's phase, for traces only (never read back)

    # The controller is stateless: these keep the look-ahead code uniform.
    def get_state(self) -> tuple[()]:
        """Nothing to save: the phase is read from the simulator every tick."""
        return ()

    def set_state(self, state: tuple[()]) -> None:
        """Nothing to restore."""

    # --- state readers -------------------------------------------------------------------
    @staticmethod
    def _eef(env: _Env) -> tuple[np.ndarray, np.ndarray]:
        m, d = _raw(env)
        sid = m.site("gripper0_grip_site").id
        return d.site_xpos[sid].copy(), d.site_xmat[sid].reshape(3, 3).copy()

    @staticmethod
    def _opening(env: _Env) -> float:
        m, d = _raw(env)
        q1 = d.qpos[m.jnt_qposadr[m.joint("gripper0_finger_joint1").id]]
        q2 = d.qpos[m.jnt_qposadr[m.joint("gripper0_finger_joint2").id]]
        return float(q1 - q2)

    @staticmethod
    def _finger_axis(env: _Env) -> np.ndarray:
        m, d = _raw(env)
        v = d.xpos[m.body("gripper0_leftfinger").id] - d.xpos[m.body("gripper0_rightfinger").id]
        v = v.copy()
        v[2] = 0.0
        n = np.linalg.norm(v)
        return v / n if n > 1e-9 else np.array([0.0, 1.0, 0.0])

    def _move(
        self, env: _Env, target: np.ndarray, yaw_want: np.ndarray | None, grip: float
    ) -> np.ndarray:
        """Action servoing the grip site to ``target``, the hand pointing down, fingers on yaw."""
        pos, rot = self._eef(env)
        a = np.zeros(ACTION_DIM)
        a[:3] = np.clip(self.pos_gain * (target - pos) / POS_SCALE, -1.0, 1.0)
        yaw = 0.0 if yaw_want is None else _yaw_error(self._finger_axis(env), yaw_want)
        # Desired orientation: the current one turned by ``yaw`` about world z, then tilted so
        # the approach axis (grip site z) points straight down.
        want = _rot_z(yaw) @ rot
        z = want[:, 2]
        tilt_axis = np.cross(z, np.array([0.0, 0.0, -1.0]))
        s, c = np.linalg.norm(tilt_axis), -z[2]
        if s > 1e-9:
            k = tilt_axis / s
            kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
            tilt = np.eye(3) + s * kx + (1 - c) * kx @ kx
            want = tilt @ want
        w = _axis_angle(want @ rot.T)
        a[3:6] = np.clip(self.rot_gain * w / ROT_SCALE, -1.0, 1.0)
        a[6] = grip
        return a

    # --- the controller -----------------------------------------------------------------
    def action(self, env: _Env) -> np.ndarray:
        """The OSC_POSE action for the current state of ``env``: shape (7,), in [-1, 1]."""
        goal = parse_goal(env)
        if goal.predicate in ("in", "on"):
            return self._pick_place(env, goal)
        if goal.predicate == "turnon":
            return self._turn_knob(env, goal)
        raise ValueError(
            f"no scripted LIBERO expert for goal predicate {goal.predicate!r}; "
            f"allowed: {', '.join(SUPPORTED)}"
        )

    def _turn_knob(self, env: _Env, goal: Goal) -> np.ndarray:
        """Turn a knob (the stove's) on by dragging it round with the closed fingers.

        The knob is a hinge about a vertical axis; its handle is the joint body's raised geom
        farthest from the axis. The closed fingertips go down on the knob just behind the
        handle (behind in the turning direction: the joint's range is positive) and keep
        pressing down there while the target follows the handle's angle, so contact drags the
        knob round. A hand that slipped ahead of the handle rises and comes round again. All of
        it is read from the current angle: no memory.
        """
        m, d = _raw(env)
        jid = m.joint(env.get_object(goal.subject).joints[0]).id
        body = m.jnt_bodyid[jid]
        anchor, axis = d.xanchor[jid].copy(), d.xaxis[jid].copy()
        if abs(axis[2]) < 0.9:
            raise ValueError(f"the knob of {goal.subject!r} does not turn about a vertical axis")
        sign = 1.0 if axis[2] > 0 else -1.0  # positive joint angle turns counter-clockwise
        geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body and m.geom_contype[g]]
        raised = [g for g in geoms if d.geom_xpos[g][2] > anchor[2] + 0.015] or geoms
        handle = max(raised, key=lambda g: float(np.linalg.norm(d.geom_xpos[g][:2] - anchor[:2])))
        h = d.geom_xpos[handle]
        phi = float(np.arctan2(h[1] - anchor[1], h[0] - anchor[0]))
        radius, z_push = 0.03, float(h[2]) + 0.005

        def on_circle(angle: float, z: float) -> np.ndarray:
            return np.array([anchor[0] + radius * np.cos(angle),
                             anchor[1] + radius * np.sin(angle), z])

        eef, _ = self._eef(env)
        theta = float(np.arctan2(eef[1] - anchor[1], eef[0] - anchor[0]))
        lead = sign * ((theta - phi + np.pi) % (2 * np.pi) - np.pi)  # >0: the hand is ahead
        behind = on_circle(phi - sign * 0.7, z_push)
        if eef[2] < z_push + 0.02:
            if lead > 0.15:  # passed the handle: come round again
                self.phase = "knob-rise"
                return self._move(env, eef + np.array([0.0, 0.0, 0.08]), None, CLOSE)
            self.phase = "knob-sweep"
            return self._move(env, on_circle(phi + sign * 0.6, z_push), None, CLOSE)
        if np.linalg.norm(eef[:2] - behind[:2]) < 0.012:
            self.phase = "knob-descend"
            return self._move(env, behind, None, CLOSE)
        self.phase = "knob-hover"
        return self._move(env, behind + np.array([0.0, 0.0, 0.06]), None, CLOSE)

    def _target(self, env: _Env, goal: Goal) -> tuple[np.ndarray, float, float, Any]:
        """Where the object goes, from the goal's region site or target body.

        Returns the xy to centre the object on, the support height it is lowered to, the height
        to clear when carrying over the target, and the model it comes to rest against (None
        for a region of the table).
        """
        assert goal.target is not None
        if goal.target in env.object_sites_dict:
            site = env.object_sites_dict[goal.target]
            pos = env.sim.data.get_site_xpos(goal.target).copy()
            mat = env.sim.data.get_site_xmat(goal.target)
            half = np.abs(mat @ np.asarray(site.size, dtype=float))
            parent_name = env.object_states_dict[goal.target].parent_name
            parent = env.get_object(parent_name) if parent_name else None
            top = float(pos[2] + half[2])
            if parent_name in env.obj_body_id and goal.predicate == "in":
                top = max(top, float(collision_box(env, parent_name)[0].hi[2]))
            if goal.predicate == "in":  # the box's floor (in_box allows 1 cm below)
                return pos[:2], float(pos[2] - half[2]), top, parent
            return pos[:2], top, top, parent  # ``under``: resting on the site's top face
        box, _ = collision_box(env, goal.target)
        body = env.sim.data.body_xpos[env.obj_body_id[goal.target]]
        return body[:2].copy(), float(box.hi[2]), float(box.hi[2]), env.get_object(goal.target)

    def _grasp_plan(self, env: _Env, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Grip-site position to close at, and the horizontal direction the fingers close along.

        An object narrower than the open gripper is held across its narrowest horizontal side
        (any side when it is round); a wider one (a bowl) is held by its rim, a finger on each
        side of the wall. Among the candidate grasps (offsets along the object, turns of the
        hand) the one whose hand and fingers overlap the neighbouring objects least is taken:
        the hand is 21 cm long along the finger axis and hits a tall neighbour before the
        fingers reach a flat object.
        """
        box, local = collision_box(env, name)
        m, d = _raw(env)
        rot = d.xmat[env.obj_body_id[name]].reshape(3, 3)
        up = int(np.argmax(np.abs(rot[2, :])))  # the body axis closest to world z
        horiz = [i for i in range(3) if i != up]
        ext = {i: float(local[1, i] - local[0, i]) for i in horiz}
        narrow, wide = sorted(horiz, key=lambda i: ext[i])
        height = float(box.hi[2] - box.lo[2])
        centre = box.center.copy()
        candidates: list[tuple[np.ndarray, np.ndarray, float]] = []  # (point, axis, preference)
        if ext[narrow] > 0.07:  # wider than the gripper: take the rim
            radius = ext[narrow] / 2
            # Prefer the wall facing the robot's base: the hand then stays closest to the base,
            # and the arm keeps reach to spare when it lowers the object at a far target.
            base = d.xpos[m.body("robot0_base").id]
            th0 = float(np.arctan2(base[1] - centre[1], base[0] - centre[0]))
            for k in range(12):
                th = th0 + k * np.pi / 6
                u = np.array([np.cos(th), np.sin(th), 0.0])
                p = centre + u * (radius - 0.012)
                p[2] = box.hi[2] - 0.02
                candidates.append((p, u, min(k, 12 - k) * 0.01))
        else:
            z = max(box.hi[2] - 0.035, box.lo[2] + height / 2)
            along = rot[:, wide].copy()
            along[2] = 0.0
            along /= max(np.linalg.norm(along), 1e-9)
            across = np.array([-along[1], along[0], 0.0])
            round_ = ext[narrow] >= 0.8 * ext[wide]
            turns = np.arange(4) * np.pi / 4 + np.pi / 2
            axes = [np.array([np.cos(t), np.sin(t), 0.0]) for t in turns] if round_ else [across]
            reach = max(0.0, ext[wide] / 2 - 0.012) if not round_ else 0.0
            for j, u in enumerate(axes):
                for off in (0.0, 0.01, -0.01, 0.02, -0.02, 0.03, -0.03):
                    if abs(off) > reach:
                        continue
                    p = centre + (np.array([-u[1], u[0], 0.0]) * off if round_ else along * off)
                    p[2] = z
                    candidates.append((p, u, abs(off) + 0.001 * j))
        lo, hi = obstacle_boxes(env, name)
        best = min(candidates, key=lambda c: (round(_hand_overlap(c[0], c[1], lo, hi), 7), c[2]))
        return best[0], best[1]

    @staticmethod
    def _covered(env: _Env, name: str, box: Box) -> bool:
        """Whether some geom hangs over ``name`` within 10 cm (a cabinet top over a drawer)."""
        lo, hi = obstacle_boxes(env, name)
        over = (
            np.all(lo[:, :2] < box.hi[:2] - 0.005, axis=1)
            & np.all(hi[:, :2] > box.lo[:2] + 0.005, axis=1)
            & (lo[:, 2] > box.hi[2] - 0.01)
            & (lo[:, 2] < box.hi[2] + 0.10)
        )
        return bool(over.any())

    @staticmethod
    def _corridor_top(env: _Env, goal: Goal, box: Box, target_xy: np.ndarray) -> float:
        """Highest obstacle under the path the held object sweeps from where it is to the target.

        The object must be carried with its bottom above this (a drawer's front wall, a
        ramekin beside the plate) as well as above the target.
        """
        assert goal.target is not None
        exclude = {goal.subject}
        parent = goal.target
        if goal.target in env.object_sites_dict:
            parent = env.object_states_dict[goal.target].parent_name or ""
        lo, hi = obstacle_boxes(env, goal.subject)
        if parent in env.obj_body_id:  # the target's own height is accounted for separately
            m, d = _raw(env)
            keep = np.ones(len(lo), dtype=bool)
            n = 0
            for name, bid in env.obj_body_id.items():
                if name in exclude:
                    continue
                k = len(_collision_geoms(m, bid))
                if name == parent:
                    keep[n:n + k] = False
                n += k
            lo, hi = lo[keep], hi[keep]
        if len(lo) == 0:
            return -np.inf
        radius = float(np.max(box.hi[:2] - box.lo[:2])) / 2
        start = box.center[:2]
        pts = start + np.linspace(0.0, 1.0, 12)[:, None] * (target_xy - start)
        p = pts[:, None, :]
        inside = np.all((p > lo[None, :, :2] - radius) & (p < hi[None, :, :2] + radius), axis=2)
        inside = inside.any(axis=0)
        return float(hi[inside, 2].max()) if inside.any() else -np.inf

    @staticmethod
    def _out_of_reach(env: _Env, point: np.ndarray) -> bool:
        """Whether ``point`` is farther from the shoulder than the hand reaches pointing down.

        The Panda reaches 0.855 m from its shoulder to the flange; the grip site of a hand
        pointing down lies ~0.1 m below the flange, so a grasp on the floor beside the table
        is out of reach while every grasp on the table is well inside.
        """
        m, d = _raw(env)
        shoulder = d.xpos[m.body("robot0_link2").id]
        return bool(np.linalg.norm(point - shoulder) > REACH)

    def _pick_place(self, env: _Env, goal: Goal) -> np.ndarray:
        obj_model = env.get_object(goal.subject)
        gripper = env.robots[0].gripper
        eef, _ = self._eef(env)
        box, _ = collision_box(env, goal.subject)
        obj_pos = env.sim.data.body_xpos[env.obj_body_id[goal.subject]].copy()
        target_xy, support_z, top_z, target_model = self._target(env, goal)
        # Held: both pads touch it (robosuite's grasp test), or, since a thin rim slips in and
        # out of one pad's contact while lifting, a closed-in gripper still touching it.
        fingers = [g for k in ("left_finger", "right_finger", "left_fingerpad", "right_fingerpad")
                   for g in gripper.important_geoms[k]]
        grasped = bool(env._check_grasp(gripper=gripper, object_geoms=obj_model)) or (
            self._opening(env) < GRIPPER_MAX - 0.01 and bool(env.check_contact(fingers, obj_model))
        )
        carry_bottom = max(top_z, self._corridor_top(env, goal, box, target_xy)) + 0.04
        xy_err = float(np.linalg.norm(obj_pos[:2] - target_xy))
        near_target = xy_err < 0.03 and box.lo[2] < support_z + 0.06
        if grasped:
            touching = target_model is not None and env.check_contact(obj_model, target_model)
            if near_target and (touching or box.lo[2] < support_z + 0.015):
                self.phase = "release"
                return self._move(env, eef, None, OPEN)  # resting on the target: let go
            eef_target = eef.copy()
            eef_target[:2] += target_xy - obj_pos[:2]
            if xy_err > 0.03 and box.lo[2] < carry_bottom - 0.02:  # lift first
                step = target_xy - obj_pos[:2]
                if self._covered(env, goal.subject, box):  # under a shelf: slide out first
                    eef_target[:2] = eef[:2] + step / max(float(np.linalg.norm(step)), 1e-9) * 0.05
                    eef_target[2] = eef[2] + 0.003
                else:
                    eef_target[:2] = eef[:2]
                    eef_target[2] += carry_bottom - box.lo[2]
            elif xy_err > 0.01 and box.lo[2] >= carry_bottom - 0.02:  # carry across
                eef_target[2] += carry_bottom - box.lo[2]
            else:  # lower onto the target
                eef_target[2] += (support_z + 0.005) - box.lo[2]
            self.phase = "carry"
            return self._move(env, eef_target, None, CLOSE)
        if near_target and self._opening(env) < GRIPPER_MAX - 0.01 and eef[2] < box.hi[2] + 0.03:
            self.phase = "opening"
            return self._move(env, eef, None, OPEN)  # finish opening before pulling away
        if near_target:  # placed and released: retreat upward
            self.phase = "retreat"
            return self._move(env, np.array([eef[0], eef[1], box.hi[2] + 0.15]), None, OPEN)
        grasp, yaw = self._grasp_plan(env, goal.subject)
        if self._out_of_reach(env, grasp):
            # An object the hand cannot reach (knocked off the table): chasing it drives the arm
            # into its joint limits and leaves it contorted, so hold still instead.
            self.phase = "out-of-reach"
            hold = np.zeros(ACTION_DIM)
            hold[6] = OPEN
            return hold
        dxy = float(np.linalg.norm(eef[:2] - grasp[:2]))
        dz = float(eef[2] - grasp[2])
        opening = self._opening(env)
        yaw_err = abs(_yaw_error(self._finger_axis(env), yaw))
        if dxy < 0.015 and abs(dz) < 0.012:
            self.phase = "close"
            return self._move(env, grasp, yaw, CLOSE)  # at the grasp pose: close
        hover = grasp + np.array([0.0, 0.0, 0.08])
        if dxy < 0.01 and yaw_err < 0.1 and opening > GRIPPER_MAX - 0.01:
            self.phase = "descend"
            return self._move(env, grasp, yaw, OPEN)  # aligned and open: descend
        if dxy < 0.02 and dz < 0.07 and opening > GRIPPER_MAX - 0.01:
            self.phase = "align"
            return self._move(env, np.array([grasp[0], grasp[1], eef[2]]), yaw, OPEN)
        if dz < 0.06 and dxy >= 0.02:  # too low to slide across: rise first
            self.phase = "rise"
            return self._move(env, np.array([eef[0], eef[1], hover[2]]), yaw, OPEN)
        self.phase = "hover"
        return self._move(env, hover, yaw, OPEN)


class _SimTask(Protocol):
    """What the look-ahead needs from a LIBERO task handle (the lead's ``LiberoTask``)."""

    env: Any

    def get_state(self) -> Any: ...  # noqa: D102

    def set_state(self, state: Any) -> None: ...  # noqa: D102

    def simulate_tick(self, action: np.ndarray) -> None: ...  # noqa: D102


class LiberoExpert:
    """The scripted LIBERO expert as a Policy, emitting chunks by look-ahead.

    ``act`` saves the task's physics, runs the per-tick controller closed-loop for
    ``chunk_size`` ticks on it, and restores it: the chunk is what the expert plans from this
    state if nothing disturbs it, the same thing an open-loop chunking VLA predicts.
    """

    needs_image = False

    def __init__(self, chunk_size: int = 8) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.name = "expert"
        self.chunk_size = chunk_size
        self.controller = LiberoScriptedController()

    def reset(self, rng: np.random.Generator) -> None:
        """The expert is deterministic; nothing to draw."""

    def act(self, inp: PolicyInput) -> np.ndarray:
        """Plan ``chunk_size`` tick actions by running the controller on the task, then undo."""
        task = inp.sim
        if task is None:
            raise ValueError("the LIBERO expert needs the privileged simulator handle (sim)")
        missing = [
            n for n in ("env", "get_state", "set_state", "simulate_tick") if not hasattr(task, n)
        ]
        if missing:
            raise ValueError(
                f"the LIBERO expert runs in a LIBERO task, got {type(task).__name__} "
                f"(missing {', '.join(missing)}); allowed: LiberoTask"
            )
        lib: _SimTask = task  # type: ignore[assignment]
        saved = lib.get_state()
        saved_ctrl = self.controller.get_state()
        chunk = np.zeros((self.chunk_size, ACTION_DIM), dtype=np.float32)
        try:
            for i in range(self.chunk_size):
                a = self.controller.action(lib.env)
                chunk[i] = a
                if i + 1 < self.chunk_size:
                    lib.simulate_tick(a)
        finally:
            # The derived quantities (poses, contacts) the recorder and cameras read between
            # ticks are recomputed for the restored state, not left at the look-ahead's end;
            # mj_forward also refreshes the solver's warm start, so the state is put back again.
            lib.set_state(saved)
            m, d = _raw(lib.env)
            mujoco.mj_forward(m, d)
            lib.set_state(saved)
            self.controller.set_state(saved_ctrl)
        return chunk
