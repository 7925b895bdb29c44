"""
Accounts in a cluster: every process keeps its own accounts table (in its
C{--db}, as history), and L{ReplicatedAccounts} publishes each change made
here as a C{state} entry of topic C{accounts} that every other process
applies to its own table, so a name registered on one process is an
account everywhere (and a guest cannot take it on another).  A process new
to the cluster also gets every other process's accounts in answer to its
first C{hello} (entries carrying C{"to"}: that instance), as for
moderation: after Redis lost its data the stream no longer holds them.  Changes made
with C{chat-admin} straight into one database file are not seen by the
others (docs/CLUSTER.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twisted_chat.storage.accounts import Account, AccountStore, NoSuchAccount

if TYPE_CHECKING:
    from twisted_chat.cluster.node import ClusterNode

TOPIC = "accounts"
VERSION = 1


class ReplicatedAccounts:
    """An L{AccountStore} whose changes reach every process of the cluster."""

    log = Logger()

    def __init__(self, store: AccountStore, node: ClusterNode) -> None:
        self.store = store
        self._node = node
        node.on_state(TOPIC, self.apply)
        node.on_hello(self.greet)

    def get(self, name: str) -> Account | None:
        return self.store.get(name)

    def all(self) -> list[Account]:
        return self.store.all()

    def close(self) -> None:
        self.store.close()

    def add(self, name: str, hash: str, operator: bool = False) -> Account:
        account = self.store.add(name, hash, operator)
        self._publish("put", account.name, hash=hash, operator=operator)
        return account

    def set_hash(self, name: str, hash: str) -> None:
        self.store.set_hash(name, hash)
        self._publish("put", name, hash=hash)

    def set_operator(self, name: str, operator: bool) -> None:
        self.store.set_operator(name, operator)
        self._publish("put", name, operator=operator)

    def delete(self, name: str) -> None:
        self.store.delete(name)
        self._publish("delete", name)

    def _publish(self, op: str, name: str, **fields: Any) -> None:
        self._node.publish_state(TOPIC, VERSION, {"op": op, "name": name, **fields})

    def apply(self, version: int, change: dict[str, Any], node: str) -> None:
        """A change made on the process C{node}: the same here."""
        if version != VERSION:
            self.log.warn("an accounts change of version {version} from {node} skipped",
                          version=version, node=node)
            return
        store, name = self.store, str(change["name"])
        to = change.get("to")
        if to is not None:  # a snapshot, for the newcomer it names: only what it lacks
            if to == self._node.instance and "hash" in change and store.get(name) is None:
                store.add(name, str(change["hash"]), bool(change.get("operator", False)))
            return
        if change.get("op") == "delete":
            try:
                store.delete(name)
            except NoSuchAccount:
                pass
            return
        account = store.get(name)
        if account is None:
            if "hash" in change:
                store.add(name, str(change["hash"]), bool(change.get("operator", False)))
            return
        if "hash" in change:
            store.set_hash(name, str(change["hash"]))
        if "operator" in change:
            store.set_operator(name, bool(change["operator"]))

    def greet(self, instance: str, first: bool) -> None:
        """
        Another process said hello: a new instance (C{first}) gets this
        process's accounts (it may have started after Redis lost the stream).
        """
        if not first:
            return
        for account in self.store.all():
            self._node.publish_state(TOPIC, VERSION, {
                "op": "put", "name": account.name, "hash": account.hash,
                "operator": account.operator, "to": instance})
