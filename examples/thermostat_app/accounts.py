"""Who signs in: household owners, their guests, and the company's operations staff.

None of this is embedkit's: a real app has its own user store. The analytics only ever
learn a household id (the tenant), a role and a list of rooms, from :attr:`User.claims`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import embedkit as ek

from .fleet import Household

#: The demo's one password. A real app checks a password hash (or uses SSO).
DEMO_PASSWORD = "demo"

#: One owner per demo household, in plan order (h01, h02, ...).
OWNERS = ("mia", "noah", "olga", "pedro", "quinn", "rosa")

#: Guests: (name, household id, the rooms they may see). Sam babysits at the Beckers'
#: and checks the kids' room and the living room from their own phone.
GUESTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (("sam", "h01", ("kids", "living")),)


def owner_claims(household: Household) -> dict[str, Any]:
    """What the analytics may know of an owner: the role, and every room of the home.

    embedkit's row rule on rooms denies a viewer without a ``rooms`` claim, so the
    owner's claim lists every room the home has now (read from the device registry
    at each sign-in, so a new room shows up on the next page view).
    """
    return {"role": "owner", "rooms": list(household.room_names)}


def owner_principal(household: Household) -> ek.Principal:
    """The household's owner, for the app's own in-process queries (advice, benchmark)."""
    return ek.Principal(tenant=household.household_id, claims=owner_claims(household))


@dataclass(frozen=True)
class User:
    """Someone who signs in for one household."""

    email: str
    name: str
    household: Household
    role: Literal["owner", "guest"]
    rooms: tuple[str, ...]

    @property
    def claims(self) -> dict[str, Any]:
        """The embed URL's claims, read by model.yml's row rule (rooms) and column
        rules (role)."""
        if self.role == "owner":
            return owner_claims(self.household)
        return {"role": "guest", "rooms": list(self.rooms)}


def demo_users(households: Sequence[Household]) -> dict[str, User]:
    """Owners of the first households (``mia@h01``...) and their guests (``sam@h01``)."""
    users: dict[str, User] = {}
    by_id = {h.household_id: h for h in households}
    for person, household in zip(OWNERS, households, strict=False):
        email = f"{person}@{household.household_id}"
        users[email] = User(email, person.capitalize(), household, "owner", household.room_names)
    for person, household_id, rooms in GUESTS:
        home = by_id.get(household_id)
        shown = tuple(r for r in rooms if home is not None and r in home.room_names)
        if home is not None and shown:  # (another seed may give the home other rooms)
            email = f"{person}@{household_id}"
            users[email] = User(email, person.capitalize(), home, "guest", shown)
    return users


@dataclass(frozen=True)
class Staff:
    """Someone of the thermostat company: sees how the data is doing, not a home's data."""

    email: str
    name: str


#: Operations staff: they open embedkit's status and catalog pages.
STAFF = {s.email: s for s in (Staff("ops@calora", "Omar"),)}
