"""What someone on the internet gets from the app's load balancer at this moment.

moto's load balancer serves no traffic, so this reads its listeners and rules as AWS would apply
them to a request from outside: rules first (any condition counts as met, the strictest view),
then the default actions in their order. The answer for a port is one of `refused` (no
listener), `redirect`, `sign-in` (an authenticate action comes before anything else), `fixed`
(a fixed response) or `APP` (forwarded to a target group without signing in).
"""

from __future__ import annotations

from typing import Any

APP = "APP"


def first_step(actions: list[dict[str, Any]]) -> str:
    ordered = sorted(actions, key=lambda a: int(a.get("Order") or 0))
    if not ordered:
        return "refused"
    kind = str(ordered[0].get("Type"))
    if kind.startswith("authenticate-"):
        return "sign-in"
    if kind == "forward":
        return APP
    if kind == "fixed-response":
        return "fixed"
    return kind


def view(boto: Any, balancer_name: str = "demo-alb") -> dict[int, str]:
    """Port (80, 443) -> what an outsider gets there; both `refused` without a load balancer."""
    elb = boto("elbv2")
    try:
        (balancer,) = elb.describe_load_balancers(Names=[balancer_name])["LoadBalancers"]
    except elb.exceptions.LoadBalancerNotFoundException:
        return {80: "refused", 443: "refused"}
    listeners = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    seen = {80: "refused", 443: "refused"}
    for listener in listeners:
        steps = [
            first_step(rule.get("Actions", []))
            for rule in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
            if not rule.get("IsDefault")
        ]
        default = first_step(listener.get("DefaultActions", []))
        seen[int(listener["Port"])] = APP if APP in steps else default
    return seen


class Timeline:
    """The outsider's view after every changing call of a command (see FlakyAws's
    one_change_at_a_time): a list of (operation, {port: answer})."""

    def __init__(self, boto: Any) -> None:
        self.boto = boto
        self.moments: list[tuple[str, dict[int, str]]] = []

    def __call__(self, operation: str) -> None:
        from tests.support.recording import is_changing

        if is_changing(operation):
            self.moments.append((operation, view(self.boto)))

    def reached_the_app(self) -> list[tuple[str, dict[int, str]]]:
        return [(op, seen) for op, seen in self.moments if APP in seen.values()]
