"""Where moto departs from AWS in a way that matters to a retried request, make it behave as
AWS does. Applied to the in-process moto server by conftest; each fix says what AWS does.
"""

from __future__ import annotations

from typing import Any


def _plain(value: Any) -> Any:
    """A request value with every leaf as a string, for comparing two requests' settings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def idempotent_create_load_balancer() -> None:
    """AWS: CreateLoadBalancer with the name of an existing load balancer and the same
    settings returns that load balancer; with other settings it answers
    DuplicateLoadBalancerName. moto 5 makes a second one of the same name, so a retried
    request whose first answer was lost would look like a duplicate."""
    from moto.elbv2.exceptions import DuplicateLoadBalancerName
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.create_load_balancer
    if getattr(original, "_dashscale_fixed", False):
        return

    def create_load_balancer(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        for existing in self.load_balancers.values():
            if existing.name != name:
                continue
            asked = (
                sorted(kwargs.get("security_groups") or (args[0] if args else []) or []),
                sorted(kwargs.get("subnet_ids") or (args[1] if len(args) > 1 else []) or []),
                kwargs.get("scheme") or "internet-facing",
                kwargs.get("loadbalancer_type") or "application",
            )
            has = (
                sorted(existing.security_groups),
                sorted(subnet.id for subnet in existing.subnets),
                existing.scheme or "internet-facing",
                existing.type,
            )
            if asked != has:
                raise DuplicateLoadBalancerName()
            return existing
        return original(self, name, *args, **kwargs)

    create_load_balancer._dashscale_fixed = True  # type: ignore[attr-defined]
    ELBv2Backend.create_load_balancer = create_load_balancer  # type: ignore[method-assign]


def idempotent_create_listener() -> None:
    """AWS: a listener's port is unique on its load balancer; CreateListener with the settings
    of an existing listener returns it, and answers DuplicateListener when any setting differs
    (protocol, TLS policy, certificate, default actions). moto 5 compares the port with
    listener ARNs and so makes a second listener on the same port."""
    import copy

    from moto.elbv2.exceptions import DuplicateListenerError
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.create_listener
    if getattr(original, "_dashscale_fixed", False):
        return

    def create_listener(
        self: Any,
        load_balancer_arn: str,
        protocol: str,
        port: Any,
        ssl_policy: Any = None,
        certificate: Any = None,
        actions: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        asked_actions = _plain(copy.deepcopy(actions or []))
        balancer = self.load_balancers.get(load_balancer_arn)
        for listener in balancer.listeners.values() if balancer else ():
            if int(listener.port) != int(port):
                continue
            same = (
                listener.protocol == (protocol or "").upper()
                and (listener.ssl_policy or None) == (ssl_policy or None)
                and (listener.certificate or None) == (certificate or None)
                and getattr(listener, "_dashscale_asked", None) == asked_actions
            )
            if not same:
                raise DuplicateListenerError()
            return listener
        made = original(
            self,
            load_balancer_arn,
            protocol,
            port,
            ssl_policy,
            certificate,
            actions,
            *args,
            **kwargs,
        )
        made._dashscale_asked = asked_actions  # the actions as asked, before moto fills them
        return made

    create_listener._dashscale_fixed = True  # type: ignore[attr-defined]
    ELBv2Backend.create_listener = create_listener  # type: ignore[method-assign]


def modified_listener_forgets_request() -> None:
    """A listener whose actions ModifyListener changed no longer matches its create request."""
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.modify_listener
    if getattr(original, "_dashscale_fixed", False):
        return

    def modify_listener(self: Any, arn: str, *args: Any, **kwargs: Any) -> Any:
        listener = original(self, arn, *args, **kwargs)
        listener._dashscale_asked = None
        return listener

    modify_listener._dashscale_fixed = True  # type: ignore[attr-defined]
    ELBv2Backend.modify_listener = modify_listener  # type: ignore[method-assign]


def unique_caller_reference() -> None:
    """AWS: CreateHostedZone with a CallerReference already used answers
    HostedZoneAlreadyExists, which is what makes a retried request safe. moto 5 ignores the
    reference and makes a second zone."""
    from moto.route53.exceptions import Route53ClientError
    from moto.route53.models import Route53Backend

    original = Route53Backend.create_hosted_zone
    if getattr(original, "_dashscale_fixed", False):
        return

    def create_hosted_zone(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        reference = kwargs.get("caller_reference")
        if reference and any(z.caller_reference == reference for z in self.zones.values()):
            raise Route53ClientError(
                "HostedZoneAlreadyExists",
                f"A hosted zone has already been created with the specified caller reference "
                f"{reference}",
            )
        return original(self, name, *args, **kwargs)

    create_hosted_zone._dashscale_fixed = True  # type: ignore[attr-defined]
    Route53Backend.create_hosted_zone = create_hosted_zone  # type: ignore[method-assign]


def autoscaling_not_found() -> None:
    """AWS: DeleteScalingPolicy and DeregisterScalableTarget for something that is not there
    answer ObjectNotFoundException. moto 5 answers ValidationException, which AWS keeps for bad
    parameters: dashscale must never take that for "already gone"."""
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
    from moto.core.exceptions import JsonRESTError

    for method in ("delete_scaling_policy", "deregister_scalable_target"):
        original = getattr(ApplicationAutoscalingBackend, method)
        if getattr(original, "_dashscale_fixed", False):
            continue

        def not_found(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            try:
                return _original(self, *args, **kwargs)
            except AWSValidationException as error:
                if not error.message.startswith("No scal"):  # only moto's "not found" answers
                    raise
                raise JsonRESTError("ObjectNotFoundException", error.message) from None

        not_found._dashscale_fixed = True  # type: ignore[attr-defined]
        setattr(ApplicationAutoscalingBackend, method, not_found)


# What only CreateUserPool sets: AWS keeps it through every UpdateUserPool.
POOL_CREATE_ONLY = ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration")


def user_pool_update_resets() -> None:
    """AWS: UpdateUserPool sets every setting the call omits back to its default, MFA included
    (MfaConfiguration OFF), refuses MfaConfiguration ON (SetUserPoolMfaConfig sets that), and
    keeps what only CreateUserPool sets (user name attributes and
    their case sensitivity). moto 5 resets the other settings but keeps MFA from the create or
    SetUserPoolMfaConfig, and forgets the create-only ones."""
    from moto.cognitoidp.exceptions import InvalidParameterException
    from moto.cognitoidp.models import CognitoIdpBackend

    original = CognitoIdpBackend.update_user_pool
    if getattr(original, "_dashscale_fixed", False):
        return

    def update_user_pool(self: Any, user_pool_id: str, extended_config: dict[str, Any]) -> None:
        if extended_config.get("MfaConfiguration") == "ON":  # AWS: SetUserPoolMfaConfig only
            raise InvalidParameterException(
                "Cannot turn MFA functionality ON, once the user pool has been created."
            )
        pool = self.describe_user_pool(user_pool_id)
        kept = {k: pool.extended_config[k] for k in POOL_CREATE_ONLY if k in pool.extended_config}
        original(self, user_pool_id, extended_config)
        pool.extended_config.update(kept)
        # one place for MFA, as SetUserPoolMfaConfig keeps it: omitted means OFF
        pool.mfa_config = pool.extended_config.pop("MfaConfiguration", None) or "OFF"

    update_user_pool._dashscale_fixed = True  # type: ignore[attr-defined]
    CognitoIdpBackend.update_user_pool = update_user_pool  # type: ignore[method-assign]


def user_pool_client_update_resets() -> None:
    """AWS: UpdateUserPoolClient sets every setting the call omits back to its default (token
    lifetimes, auth flows, scopes, callback and logout URLs, ...). moto 5 merges the call into
    the client's settings, so an update that forgets a setting would look harmless. Here even
    an omitted ClientName is lost: stricter than AWS, never laxer."""
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPoolClient

    original = CognitoIdpBackend.update_user_pool_client
    if getattr(original, "_dashscale_fixed", False):
        return

    def update_user_pool_client(
        self: Any, user_pool_id: str, client_id: str, extended_config: dict[str, Any]
    ) -> Any:
        client = original(self, user_pool_id, client_id, {})  # the pool and client must exist
        defaults = CognitoIdpUserPoolClient(user_pool_id, False, None).extended_config
        client.extended_config = {**defaults, **extended_config}
        return client

    update_user_pool_client._dashscale_fixed = True  # type: ignore[attr-defined]
    CognitoIdpBackend.update_user_pool_client = update_user_pool_client  # type: ignore[method-assign]


def log_stream_name_prefix() -> None:
    """AWS: FilterLogEvents with logStreamNamePrefix reads only the streams whose names start
    with it (none matching: no events). moto 5 ignores the prefix and reads every stream, so
    the app's lines and its workers' would look the same."""
    import json

    from moto.logs.responses import LogsResponse

    original = LogsResponse.filter_log_events
    if getattr(original, "_dashscale_fixed", False):
        return

    def filter_log_events(self: Any) -> str:
        prefix = self._get_param("logStreamNamePrefix")
        if not prefix or self._get_param("logStreamNames"):
            return str(original(self))
        group = self.logs_backend.groups.get(self._get_param("logGroupName"))
        names = [name for name in (group.streams if group else {}) if name.startswith(prefix)]
        if group is not None and not names:
            return json.dumps({"events": [], "searchedLogStreams": []})
        self.body = json.dumps({**json.loads(self.body), "logStreamNames": names})
        return str(original(self))

    filter_log_events._dashscale_fixed = True  # type: ignore[attr-defined]
    LogsResponse.filter_log_events = filter_log_events  # type: ignore[method-assign]


def apply() -> None:
    log_stream_name_prefix()
    from tests.support import moto_cache

    moto_cache.apply()
    autoscaling_not_found()
    idempotent_create_load_balancer()
    idempotent_create_listener()
    modified_listener_forgets_request()
    unique_caller_reference()
    user_pool_update_resets()
    user_pool_client_update_resets()
