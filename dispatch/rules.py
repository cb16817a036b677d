"""Trouble-call roll-up rules, configurable per device kind.

Outage management systems predict the operated device bottom-up: enough customers out
under a transformer (or LV fuse) predict it out; enough predicted-out downstream
transformers/fuses predict the fuse, recloser, sectionaliser or breaker above them out.
"Enough" is a count *and* a share, because ten calls mean little under a 5,000-customer
breaker and a lot under a 20-customer transformer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridmend.topology.elements import Kind


@dataclass(frozen=True, slots=True)
class RollUpRule:
    """When a device is predicted out.

    - Meters directly below it (no lower device can explain them): ``meter_count`` callers
      and ``meter_share`` of those meters; a single caller makes a *provisional* prediction,
      two or a last gasp a confirmed one.
    - Roll-up from below: at least ``min_parts`` of its parts (downstream devices or
      transformers with customers, plus its directly attached meters) report, they hold at
      least ``min_share`` of its customers, and every quieter part is *consistent* with one
      outage: seeing that few reports there has probability ≥ ``silence_p`` at the report
      rate of the parts that did report (Poisson). One GPS fix in a sibling area where
      fifteen calls would be expected does not lift a fuse fault to the transformer.
    - ``last_gasp_count`` distinct AMI last gasps directly below settle it at once (0 = off).
    - ``min_solid_parts`` of the reporting parts must have two reports or a last gasp; a
      part with one report may be a stray fix or a customer-side fault. Inside a transformer
      area (one LV board, one AMI concentrator) two households on different LV cables are
      already a good witness, so the LV rule asks for none.
    - A roll-up also needs ``min_reports`` independent reports and ``min_rate`` reports per
      customer in the reporting parts: two stray calls in a 250-customer lateral are not
      an outage of the lateral (a real one draws 10–40 % of its customers' meters or phones).
    """

    meter_count: int = 1
    meter_share: float = 0.0
    min_parts: int = 2
    min_share: float = 0.0
    silence_p: float = 0.02
    last_gasp_count: int = 0
    min_reports: int = 3
    min_rate: float = 0.04  # reports per customer in the reporting parts
    min_solid_parts: int = 2  # parts with ≥ 2 reports or a last gasp

    def meters_out(self, out: int, total: int) -> bool:
        return out >= self.meter_count and out >= self.meter_share * total and out > 0


def default_rules() -> dict[Kind, RollUpRule]:
    """Defaults tuned on the storm simulator (see bench/inference_accuracy.py)."""
    return {
        # A transformer area or LV fuse-way: one caller who is not sure it is "only me"
        # opens a provisional fault.
        Kind.TRANSFORMER: RollUpRule(
            1, 0.0, 2, 0.0, last_gasp_count=1, min_reports=2, min_solid_parts=0
        ),
        # MV lateral fuses (LV fuse-ways use ``InferenceSettings.lv_fuse_rule``): two
        # independent transformer faults on one lateral are common in a storm, so quiet
        # transformers on it must be clearly plausible before the lateral is blamed.
        Kind.FUSE: RollUpRule(1, 0.0, 2, 0.0, silence_p=0.05, last_gasp_count=1),
        Kind.SECTIONALISER: RollUpRule(3, 0.1, 2, 0.3),
        Kind.RECLOSER: RollUpRule(3, 0.1, 3, 0.3),
        Kind.BREAKER: RollUpRule(3, 0.1, 3, 0.3),
    }


@dataclass(frozen=True, slots=True)
class InferenceSettings:
    """Everything tunable about trouble-call analysis, with field-practice defaults."""

    rules: dict[Kind, RollUpRule] = field(default_factory=default_rules)
    #: A lone caller under a transformer area is re-judged after this long …
    lone_caller_window_s: float = 30 * 60.0
    #: … as customer-side when at least this many other households stayed silent ("nobody
    #: else reports within the window"): those of its transformer area, or, where the area
    #: has fewer (a pole-top transformer serving one home), of the devices above it.
    lone_caller_min_peers: int = 2
    #: Faults resting on at most this many calling households are re-judged.
    lone_caller_max_households: int = 2
    #: Reports per customer a real outage draws within the window, at the least (calls
    #: alone, AMI down) — used to judge two-household faults …
    expected_report_rate: float = 0.06
    #: … which are withdrawn when so few reports have probability below this.
    lone_caller_silence_p: float = 0.05
    #: After a device is seen restored, meters that sent a last gasp and no restore within
    #: this grace are taken to be still dark (a nested outage below it).
    restore_grace_s: float = 5 * 60.0
    #: A call from inside a restored fault within this long after the restoration brings its
    #: part's presumed-restored callers back as a nested outage (see ``_still_dark``).
    nested_callback_window_s: float = 12 * 3600.0
    #: Share of transformer areas whose AMI backhaul may fail in a storm: how much the
    #: silence of a whole area whose neighbours' meters gasped is worth.
    ami_backhaul_loss: float = 0.3
    #: How much less likely one more independent device fault is than one shared outage:
    #: with many reporting parts below a device, a few quiet ones no longer argue against
    #: blaming it (a lateral with 25 dark pole-top transformers is one fault, not 25).
    independent_fault_prior: float = 0.1
    #: Parts of one outage lose supply together: their meters' last gasps (30–45 s after
    #: the loss) lie within this of each other. Parts whose gasps lie further apart went
    #: dark one by one (a flood taking transformers out as the water rises).
    simultaneous_gasp_s: float = 120.0
    #: GPS fixes farther than this from every service point are outside the service area.
    gps_radius_m: float = 150.0
    #: Typical error of a phone GPS fix in a built-up area.
    gps_uncertainty_m: float = 30.0

    #: Rule for fuses inside a transformer area (LV fuse-ways and cable cabinets).
    lv_fuse_rule: RollUpRule = field(
        default_factory=lambda: RollUpRule(
            1, 0.0, 2, 0.0, last_gasp_count=1, min_reports=2, min_solid_parts=0
        )
    )

    def rule(self, kind: Kind) -> RollUpRule:
        return self.rules.get(kind, RollUpRule())
