"""An account's token, in its own Secrets Manager secret (<stack>/accounts/<account id>), as a TokenDocument.

A renewed token is written as the secret's AWSPENDING version first and becomes AWSCURRENT only once
/me has accepted it (TokenVault.promote): a failed refresh, a failed write or a crash in between leaves
the working token current, and a pending token a crash left behind is found again by the next run.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


@dataclass(frozen=True)
class TokenDocument:
    """The JSON of an account's token secret."""

    access_token: str = field(repr=False)
    user_id: str
    username: str | None = None
    scopes: tuple[str, ...] = ()
    expires_at: int | None = None  # epoch seconds; None when Meta never told us (pasted token)
    refreshed_at: int | None = None  # when issued or last refreshed; None when unknown

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "user_id": self.user_id,
                "username": self.username,
                "scopes": list(self.scopes),
                "expires_at": self.expires_at,
                "refreshed_at": self.refreshed_at,
                "token_type": "instagram_user_long_lived",  # nosec B105 # a kind of token
            }
        )

    @classmethod
    def from_json(cls, text: str, account_id: str) -> "TokenDocument":
        document = json.loads(text)
        if not isinstance(document, dict) or not isinstance(document.get("access_token"), str):
            raise ValueError("the secret holds no access_token")
        scopes = document.get("scopes")
        return cls(
            access_token=document["access_token"],
            user_id=str(document.get("user_id") or account_id),
            username=document.get("username") if isinstance(document.get("username"), str) else None,
            scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
            expires_at=_epoch(document.get("expires_at")),
            # Secrets written before refreshed_at existed carry stored_at, the time of registration.
            refreshed_at=_epoch(document.get("refreshed_at", document.get("stored_at"))),
        )


class TokenVault:
    """Reads and writes token secrets, version by version (no cache: the refresher needs what is there)."""

    def __init__(self, secretsmanager: Any, prefix: str) -> None:
        self._client = secretsmanager
        self._prefix = prefix

    def secret_name(self, account_id: str) -> str:
        return token_secret_name(self._prefix, account_id)

    def read(self, secret_id: str, account_id: str, stage: str = CURRENT) -> tuple[TokenDocument, str] | None:
        """The document at `stage` and its version id; None when no version carries that stage."""
        try:
            answer = self._client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return TokenDocument.from_json(answer["SecretString"], account_id), answer["VersionId"]

    def store(self, document: TokenDocument) -> str:
        """Create the secret, or make `document` its current version (a new login proved the token)."""
        name = self.secret_name(document.user_id)
        try:
            self._client.create_secret(
                Name=name,
                SecretString=document.to_json(),
                Description=f"Instagram user token of account {document.user_id}",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
                raise
            self._client.put_secret_value(SecretId=name, SecretString=document.to_json())
        return name

    def delete(self, secret_id: str) -> bool:
        """Delete the account's token secret now, without the recovery window (the owner removed the app:
        nothing may keep the token); a secret already gone is not an error. Whether there was one."""
        try:
            self._client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            return False
        return True

    def stage(self, secret_id: str, document: TokenDocument) -> str:
        """Write `document` as the pending version; the current one stays what every reader gets."""
        answer = self._client.put_secret_value(
            SecretId=secret_id, SecretString=document.to_json(), VersionStages=[PENDING]
        )
        return str(answer["VersionId"])

    def make_current(self, secret_id: str, document: TokenDocument) -> str:
        """Write a token already proven as the current version at once (the old one becomes AWSPREVIOUS)."""
        answer = self._client.put_secret_value(SecretId=secret_id, SecretString=document.to_json())
        return str(answer["VersionId"])

    def promote(self, secret_id: str, version_id: str, current_version_id: str) -> None:
        """Make the pending version current in one call (the old one becomes AWSPREVIOUS), then clear the
        pending label so a later run does not mistake it for a token still to be tried."""
        self._client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=version_id, RemoveFromVersionId=current_version_id
        )
        self.discard_pending(secret_id, version_id)

    def discard_pending(self, secret_id: str, version_id: str) -> None:
        self._client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id
        )


def token_secret_name(prefix: str, account_id: str) -> str:
    return f"{prefix}{account_id}"


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
