"""Every AWS name and the standard tag: the only place names are built.

Names follow the guide ("Scaling Dash on AWS"): APP-alb-sg, APP-cluster, APP-tg and so on.
With APP_NAME at most 20 characters, the longest (load balancer, target group: 32) fit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TAG_KEY = "dashscale:app"


@dataclass(frozen=True)
class Names:
    app: str
    region: str = ""

    @property
    def alb_sg(self) -> str:
        return f"{self.app}-alb-sg"

    @property
    def task_sg(self) -> str:
        return f"{self.app}-from-alb-sg"

    @property
    def cluster(self) -> str:
        return f"{self.app}-cluster"

    @property
    def taskdef(self) -> str:
        return f"{self.app}-taskdef"

    @property
    def container(self) -> str:
        return f"{self.app}-container"

    @property
    def service(self) -> str:
        return f"{self.app}-service"

    @property
    def cache(self) -> str:
        """The ElastiCache replication group (at most 20+6 of its 40 characters)."""
        return f"{self.app}-cache"

    @property
    def cache_subnet_group(self) -> str:
        return f"{self.app}-cache-subnets"

    @property
    def cache_sg(self) -> str:
        return f"{self.app}-cache-sg"

    @property
    def worker_service(self) -> str:
        return f"{self.app}-worker"

    @property
    def worker_taskdef(self) -> str:
        return f"{self.app}-worker-taskdef"

    @property
    def worker_container(self) -> str:
        return f"{self.app}-worker"

    @property
    def alb(self) -> str:
        return f"{self.app}-alb"

    @property
    def target_group(self) -> str:
        return f"{self.app}-tg"

    @property
    def repository(self) -> str:
        return f"{self.app}-repository"

    @property
    def execution_role(self) -> str:
        # IAM is global: the region in the name keeps the same app in two regions from sharing
        # (and one teardown from deleting) the other's role. At most 20+1+15+19 = 55 of 64.
        region = f"{self.region}-" if self.region else ""
        return f"{self.app}-{region}task-execution-role"

    @property
    def task_role(self) -> str:
        """The role the app's own code gets (S3, Athena): at most 20+1+15+10 = 46 of 64."""
        region = f"{self.region}-" if self.region else ""
        return f"{self.app}-{region}task-role"

    @property
    def deployer_role(self) -> str:
        """The role a CI pipeline assumes to deploy the app (`dashscale ci role`)."""
        return f"{self.app}-deployer"

    @property
    def secrets_path(self) -> str:
        """The SSM path under which `dashscale secret set` stores the app's secrets."""
        return f"/dashscale/{self.app}/"

    def secret(self, name: str) -> str:
        return f"{self.secrets_path}{name}"

    @property
    def log_group(self) -> str:
        return f"/ecs/{self.app}"

    @property
    def user_pool(self) -> str:
        return f"{self.app}-users"

    @property
    def user_pool_client(self) -> str:
        return f"{self.app}-alb"

    def sign_in_domain(self, user_pool_id: str) -> str:
        """The prefix of the pool's hosted sign-in domain (PREFIX.auth.REGION.amazoncognito.com):
        global across accounts, so the app's name plus a short hash of the pool's id. Cognito
        refuses prefixes containing aws, amazon or cognito: those become x."""
        digest = hashlib.sha256(user_pool_id.encode()).hexdigest()[:10]
        app = self.app
        for word in ("amazon", "cognito", "aws"):
            app = app.replace(word, "x")
        return f"{app}-{digest}"

    @property
    def local_image(self) -> str:
        return self.app

    # Tag shapes differ between services; all carry the same key and value.
    def tags(self) -> list[dict[str, str]]:
        """EC2, ELBv2, ECR, ACM, IAM, Route 53 style: [{'Key': ..., 'Value': ...}]."""
        return [{"Key": TAG_KEY, "Value": self.app}]

    def ecs_tags(self) -> list[dict[str, str]]:
        return [{"key": TAG_KEY, "value": self.app}]

    def tag_map(self) -> dict[str, str]:
        """CloudWatch Logs style: {key: value}."""
        return {TAG_KEY: self.app}

    def owns(self, tags: list[dict[str, str]] | dict[str, str] | None) -> bool:
        """True when the tags, in any of the shapes above, mark a resource as this app's."""
        if not tags:
            return False
        if isinstance(tags, dict):
            return tags.get(TAG_KEY) == self.app
        for tag in tags:
            key = tag.get("Key", tag.get("key"))
            value = tag.get("Value", tag.get("value"))
            if key == TAG_KEY and value == self.app:
                return True
        return False
