"""Accounts: creation (with a did:plc), sessions, app passwords, status and deletion.

Theory of operation. An account is a DID this PDS hosts, with a handle, a password hash,
a repository signing key and a status. Its life:

    (new DID)  createAccount ----------------------------> active
    (migrated) createAccount + service token -> deactivated --activateAccount--> active
    (recovered) createAccount + reserved key -> deactivated --activateAccount--> active
    active --deactivateAccount--> deactivated --activateAccount--> active
    any --deleteAccount--> (gone; a final #account event says "deleted")

A new account on a new DID spans two stores, this PDS's and the directory's, and is
made so that nothing stays registered unless everything succeeds. Every check that can
refuse the request runs first: email, password, handle (syntax, this host's domains,
and the network's handle authority, the directory: no other DID may hold it), recovery
key; the password is hashed and the genesis operation built and signed. Only then is
the genesis submitted; the directory's refusal (a handle claimed in the meantime is
``HandleNotAvailable``) is the final word and leaves nothing anywhere. The genesis lists
the member's recovery key first (when given), then this PDS's rotation key, and names
this PDS's public URL as ``#atproto_pds``. Then one transaction stores the account, its
first (empty) commit and the recommended events in order: ``#identity``, ``#account``,
``#commit``. If that transaction fails (a concurrent sign-up with the same email, a
store failure), the PDS compensates by tombstoning the DID it just registered, which
releases its handle: a PLC log is append-only, so a tombstone is the protocol's way to
take a registration back, and a two-phase commit with a public directory is not one.
A migrating account arrives deactivated, with a fresh signing key and no events; it
becomes visible when activated. A recovered account (its old host gone, so no service
token) arrives the same way with the signing key this host reserved for it, once the
DID's document names this host and that key (:mod:`plaza.services.pds.reservations`).

Accounts are cached in memory once loaded, with their signing key decoded, because
every authenticated request and every write needs them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from plaza.atproto import syntax
from plaza.atproto.crypto import ES256K, PrivateKey, parse_did_key
from plaza.atproto.errors import AtprotoError
from plaza.atproto.plc import Operation, create_genesis, create_tombstone
from plaza.db import IntegrityError
from plaza.services.pds.account import Account, AccountCache
from plaza.services.pds.auth import (
    Authenticator,
    Credentials,
    SessionTokens,
    hash_password,
    new_app_password,
    verify_password,
)
from plaza.services.pds.blob_gc import drop_unheld_bytes
from plaza.services.pds.errors import (
    AccountTakedownError,
    AlreadyExistsError,
    AuthRequiredError,
    HandleNotAvailableError,
    InvalidHandleError,
    InvalidRequestError,
    InvalidTokenError,
    RepoNotFoundError,
)
from plaza.services.pds.sequencer import iso_time
from plaza.services.pds.store import (
    ACTIVE,
    DEACTIVATED,
    DELETED,
    TAKENDOWN,
    AccountRow,
    AppPasswordRow,
    EventRow,
    PdsStore,
    RefreshTokenRow,
)

if TYPE_CHECKING:
    from plaza.services.pds.blobs import BlobStore
    from plaza.services.pds.handles import HandleResolver
    from plaza.services.pds.identity import DirectoryClient
    from plaza.services.pds.mail import Outbox
    from plaza.services.pds.repos import RepoManager
    from plaza.services.pds.reservations import KeyReservations
    from plaza.services.pds.sequencer import Sequencer
    from plaza.services.pds.settings import PdsSettings

log = logging.getLogger("plaza.pds")

TOKEN_TTL_S = 15 * 60
PLC_PURPOSE = "plc_operation"
DELETE_PURPOSE = "delete_account"
MIN_PASSWORD = 8
MAX_PASSWORD = 256
# A failed login checks every app password's hash (argon2, ~20 ms each): bounded.
MAX_APP_PASSWORDS = 50


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountManager:
    """Account lifecycle over the store, the directory and the sequencer."""

    def __init__(
        self,
        *,
        store: PdsStore,
        cache: AccountCache,
        sequencer: Sequencer,
        repos: RepoManager,
        auth: Authenticator,
        identity: DirectoryClient,
        handles: HandleResolver,
        outbox: Outbox,
        blobs: BlobStore,
        settings: PdsSettings,
        rotation_key: PrivateKey,
        reservations: KeyReservations,
    ) -> None:
        self.store = store
        self.cache = cache
        self.sequencer = sequencer
        self.repos = repos
        self.auth = auth
        self.identity = identity
        self.handles = handles
        self.outbox = outbox
        self.blobs = blobs
        self.settings = settings
        self.rotation_key = rotation_key
        self.reservations = reservations

    # -- lookup (through the cache) --------------------------------------------------
    def cached(self, did: str) -> Account | None:
        return self.cache.cached(did)

    def invalidate(self, did: str) -> None:
        self.cache.invalidate(did)

    def lookup(self, identifier: str) -> Account | None:
        """An account by DID, handle or email."""
        return self.cache.lookup(identifier)

    def require(self, identifier: str) -> Account:
        return self.cache.require(identifier)

    # -- handles ---------------------------------------------------------------------
    async def check_handle(self, handle: str, *, for_did: str | None = None) -> str:
        """Validate a new handle for this host; return it normalized.

        :class:`HandleNotAvailableError` when an account here or, for the network's
        domains, the directory says another DID holds it (the directory refuses the
        PLC operation too, should another claim land between this check and it)."""
        try:
            handle = syntax.normalize_handle(handle)
        except AtprotoError as exc:
            raise InvalidHandleError(f"Invalid handle: {exc.message}") from exc
        domains = self.settings.user_domains
        if not any(handle.endswith(d) and len(handle) > len(d) for d in domains):
            raise InvalidHandleError(f"Handle must end with one of {', '.join(domains)}")
        label = handle[: -len(next(d for d in domains if handle.endswith(d)))]
        if "." in label:
            raise InvalidHandleError("Handle must be a single label under the host's domain")
        existing = self.store.get_account_by_handle(handle)
        if existing is not None and existing.did != for_did:
            raise HandleNotAvailableError(f"Handle already taken: {handle}")
        await self._check_authority(handle, for_did)
        return handle

    async def _check_authority(self, handle: str, for_did: str | None) -> None:
        if self.handles.in_network(handle):
            holder = await self.handles.holder(handle)
            if holder is not None and holder != for_did:
                raise HandleNotAvailableError(f"Handle already taken: {handle}")

    # -- creation --------------------------------------------------------------------
    async def create(
        self,
        *,
        handle: str,
        email: str | None,
        password: str,
        did: str | None,
        recovery_key: str | None,
        service_creds: Credentials | None,
        plc_op: Any | None = None,
    ) -> tuple[Account, SessionTokens]:
        """A new account. ``did`` ``None``: a new DID (its genesis lists ``recovery_key``
        first). An existing ``did`` arrives deactivated, authorized either by a service
        token it signed (``service_creds``; a fresh signing key) or by a DID document
        naming this host and a key reserved for it here (``plc_op`` submitted first when
        given; the reserved key is the account's): see
        :meth:`plaza.services.pds.reservations.KeyReservations.admit`.

        Arrivals of one existing DID take turns (its repository lock): once the DID
        names this host, a second request for it finds the first one's account, never
        races it."""
        run = self._create(
            handle=handle,
            email=email,
            password=password,
            did=did,
            recovery_key=recovery_key,
            service_creds=service_creds,
            plc_op=plc_op,
        )
        if did is None:
            return await run
        async with self.repos.lock(did):
            return await run

    async def _create(
        self,
        *,
        handle: str,
        email: str | None,
        password: str,
        did: str | None,
        recovery_key: str | None,
        service_creds: Credentials | None,
        plc_op: Any | None,
    ) -> tuple[Account, SessionTokens]:
        if email is not None:
            email = email.strip().lower()
            if "@" not in email or len(email) > 254:
                raise InvalidRequestError("This email address is not valid")
            if self.store.get_account_by_email(email) is not None:
                raise InvalidRequestError("This email address is already in use")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidRequestError(
                f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
            )
        key = PrivateKey.generate(ES256K)
        genesis: Operation | None = None
        reserved = False
        if did is not None:
            handle = await self._migrating_handle(handle, did)
            if self.store.get_account(did) is not None:
                raise AlreadyExistsError(f"Account already exists: {did}")
            if service_creds is None:
                key = await self.reservations.admit(did, self.settings.public_url, plc_op)
                reserved = True
            elif service_creds.did != did:
                raise AuthRequiredError(
                    "Creating an account for an existing DID needs a service token from it"
                )
            status = DEACTIVATED
        else:
            handle = await self.check_handle(handle)
            did, genesis = self._genesis(handle, key, recovery_key)
            status = ACTIVE
        password_hash = await hash_password(password)
        if genesis is not None:
            # The last step that can be refused without leaving anything behind.
            await self.identity.submit(did, genesis)
        now = time.time()
        row = AccountRow(
            did=did,
            handle=handle,
            email=email,
            password_hash=password_hash,
            signing_key=key.to_bytes(),
            created_at=iso_time(now),
            status=status,
            status_at=iso_time(now),
        )
        events: list[EventRow] = []
        try:
            with self.store.transaction():
                self.store.create_account(row)
                if reserved:
                    self.reservations.release(did, key.did_key())
                if status == ACTIVE:
                    events.append(self.sequencer.identity(did, handle, now))
                    events.append(self.sequencer.account(did, True, None, now))
                commit_event = self.repos.create_repo(did, key, now, emit=status == ACTIVE)
                if commit_event is not None:
                    events.append(commit_event)
                tokens = self._new_session(did, None, False)
        except IntegrityError as exc:
            await self._withdraw(did, genesis)
            if self.store.get_account_by_handle(handle) is not None:
                raise HandleNotAvailableError(f"Handle already taken: {handle}") from exc
            raise AlreadyExistsError("Account already exists") from exc
        except Exception:
            await self._withdraw(did, genesis)
            raise
        self.sequencer.publish(events)
        self.invalidate(did)
        acct = self.cached(did)
        assert acct is not None
        return acct, tokens

    async def _withdraw(self, did: str, genesis: Operation | None) -> None:
        """Tombstone ``did``, registered by ``genesis`` for an account that was not
        stored, so that it claims nothing (its handle) in the directory."""
        if genesis is None:
            return
        try:
            await self.identity.submit(did, create_tombstone(genesis, self.rotation_key))
        except Exception:  # the sign-up's own failure is the one to report
            log.exception("could not tombstone %s after its account failed to store", did)

    async def _migrating_handle(self, handle: str, did: str) -> str:
        try:
            handle = syntax.normalize_handle(handle)
        except AtprotoError as exc:
            raise InvalidHandleError(f"Invalid handle: {exc.message}") from exc
        existing = self.store.get_account_by_handle(handle)
        if existing is not None and existing.did != did:
            raise HandleNotAvailableError(f"Handle already taken: {handle}")
        await self._check_authority(handle, did)
        return handle

    def _genesis(
        self, handle: str, key: PrivateKey, recovery_key: str | None
    ) -> tuple[str, Operation]:
        """The new DID and its signed genesis operation (not yet submitted)."""
        rotation = [self.rotation_key.did_key()]
        if recovery_key is not None:
            try:
                parse_did_key(recovery_key)
            except AtprotoError as exc:
                raise InvalidRequestError(f"recoveryKey is not a did:key: {exc.message}") from exc
            if recovery_key not in rotation:
                rotation.insert(0, recovery_key)
        return create_genesis(
            key=self.rotation_key,
            rotation_keys=rotation,
            signing_key=key.did_key(),
            handle=handle,
            pds_endpoint=self.settings.public_url,
        )

    # -- sessions --------------------------------------------------------------------
    def _new_session(self, did: str, app_password: str | None, privileged: bool) -> SessionTokens:
        tokens = self.auth.issue(did, app_password, privileged)
        self.store.add_refresh_token(
            RefreshTokenRow(tokens.refresh_jti, did, app_password, tokens.refresh_expires_at)
        )
        return tokens

    async def login(self, identifier: str, password: str) -> tuple[Account, SessionTokens]:
        """Check the password or an app password; :class:`AuthRequiredError` otherwise."""
        acct = self.lookup(identifier)
        fail = AuthRequiredError("Invalid identifier or password")
        if acct is None:
            # Spend the same time as a real check, so a miss does not reveal the account.
            await verify_password(_DUMMY_HASH, password)
            raise fail
        row = self.store.get_account(acct.did)
        assert row is not None
        app_password: AppPasswordRow | None = None
        if not await verify_password(row.password_hash, password):
            for candidate in self.store.list_app_passwords(acct.did):
                if await verify_password(candidate.password_hash, password):
                    app_password = candidate
                    break
            else:
                raise fail
        if acct.status == TAKENDOWN:
            raise AccountTakedownError("Account has been taken down")
        with self.store.transaction():
            tokens = self._new_session(
                acct.did,
                None if app_password is None else app_password.name,
                bool(app_password and app_password.privileged),
            )
        return acct, tokens

    def refresh(self, creds: Credentials) -> tuple[Account, SessionTokens]:
        """Rotate a refresh token: the old one stops working."""
        assert creds.did is not None and creds.jti is not None
        acct = self.cached(creds.did)
        if acct is None:
            raise InvalidTokenError("Token could not be verified: no such account")
        privileged = False
        if creds.app_password is not None:
            names = {p.name: p for p in self.store.list_app_passwords(acct.did)}
            pw = names.get(creds.app_password)
            if pw is None:
                raise InvalidTokenError("The app password of this session was revoked")
            privileged = pw.privileged
        with self.store.transaction():
            if not self.store.delete_refresh_token(creds.jti):
                raise InvalidTokenError("Token has been revoked")
            tokens = self._new_session(acct.did, creds.app_password, privileged)
        return acct, tokens

    def logout(self, creds: Credentials) -> None:
        if creds.jti is not None:
            self.store.delete_refresh_token(creds.jti)

    async def session_view(self, acct: Account) -> dict[str, Any]:
        """The session fields every session method returns."""
        out: dict[str, Any] = {"did": acct.did, "handle": acct.handle}
        if acct.email is not None:
            out["email"] = acct.email
            out["emailConfirmed"] = acct.email_confirmed
        doc = await self.identity.document(acct.did)
        if doc is not None:
            out["didDoc"] = doc
        out["active"] = acct.active
        if not acct.active:
            out["status"] = acct.status
        return out

    # -- app passwords ---------------------------------------------------------------
    async def create_app_password(self, did: str, name: str, privileged: bool) -> dict[str, Any]:
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise InvalidRequestError("App password name must be 1 to 64 characters")
        if len(self.store.list_app_passwords(did)) >= MAX_APP_PASSWORDS:
            raise InvalidRequestError(
                f"An account can have at most {MAX_APP_PASSWORDS} app passwords; revoke one first"
            )
        password = new_app_password()
        row = AppPasswordRow(name, await hash_password(password), privileged, iso_time(time.time()))
        try:
            self.store.add_app_password(did, row)
        except IntegrityError as exc:
            raise AlreadyExistsError("An app password with this name exists already") from exc
        return {
            "name": name,
            "password": password,
            "createdAt": row.created_at,
            "privileged": privileged,
        }

    def revoke_app_password(self, did: str, name: str) -> None:
        with self.store.transaction():
            self.store.delete_app_password(did, name)
            self.store.delete_refresh_tokens(did, name)

    # -- confirmation tokens (sent through the outbox) -------------------------------
    def send_token(self, acct: Account, purpose: str) -> None:
        token = "-".join(secrets.token_hex(3).upper() for _ in range(2))
        expires = int(time.time()) + TOKEN_TTL_S
        self.store.put_email_token(acct.did, purpose, _token_hash(token), expires)
        self.outbox.send(acct.did, purpose, acct.email, token)

    def check_token(self, did: str, purpose: str, token: str | None) -> None:
        """Refuse a missing, wrong or expired confirmation token; spend nothing."""
        if not token:
            raise InvalidRequestError("A confirmation token is required", code="InvalidToken")
        stored = self.store.get_email_token(did, purpose)
        if stored is None or not hmac.compare_digest(stored[0], _token_hash(token.strip())):
            raise InvalidRequestError("Token is invalid", code="InvalidToken")
        if stored[1] < time.time():
            raise InvalidRequestError("Token is expired", code="ExpiredToken")

    def consume_token(self, did: str, purpose: str, token: str | None) -> None:
        """:meth:`check_token`, then spend it (a token works once)."""
        self.check_token(did, purpose, token)
        self.store.delete_email_token(did, purpose)

    # -- status ----------------------------------------------------------------------
    def set_status(self, acct: Account, status: str, delete_after: str | None = None) -> None:
        """Change status and emit ``#account`` (an activation is followed by a commit)."""
        now = time.time()
        events: list[EventRow] = []
        with self.store.transaction():
            self.store.set_status(acct.did, status, iso_time(now), delete_after)
            if status == ACTIVE:
                events.append(self.sequencer.identity(acct.did, acct.handle, now))
                events.append(self.sequencer.account(acct.did, True, None, now))
                events.append(self.repos.empty_commit(acct, now))
            else:
                events.append(self.sequencer.account(acct.did, False, status, now))
        self.sequencer.publish(events)
        self.invalidate(acct.did)

    async def delete(self, did: str, password: str, token: str | None) -> None:
        acct = self.cached(did)
        if acct is None:
            raise RepoNotFoundError(f"Could not find repo: {did}")
        row = self.store.get_account(did)
        assert row is not None
        if not await verify_password(row.password_hash, password):
            raise AuthRequiredError("Invalid did or password")
        self.consume_token(did, DELETE_PURPOSE, token)
        blobs = [c for c in self.store.list_blobs(did, None, 1_000_000)]
        now = time.time()
        with self.store.transaction():
            self.store.delete_account(did)
            event = self.sequencer.account(did, False, DELETED, now)
        self.sequencer.publish([event])
        self.invalidate(did)
        self.repos.forget(did)
        for cid in blobs:
            drop_unheld_bytes(self.store, self.blobs, cid)

    def update_handle(self, acct: Account, handle: str) -> None:
        now = time.time()
        with self.store.transaction():
            self.store.set_handle(acct.did, handle)
            event = self.sequencer.identity(acct.did, handle, now)
        self.sequencer.publish([event])
        self.invalidate(acct.did)


_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
    "1YdzLRNiXA6Pk3E3UYaL6GpxDjXH1yH1Xy4mq1Q9NBM"
)
