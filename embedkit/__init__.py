"""embedkit: embedded analytics for SaaS apps.

Register tenant-scoped datasets, define metrics once, and query them as a
verified principal; every read is scoped to that principal's rows.
"""

from embedkit.cache.redis import RedisCache
from embedkit.cache.shared import MemoryCache, SharedCache
from embedkit.dataset import SQL, Dataset
from embedkit.embed.keys import SigningKey, generate_secret
from embedkit.embed.resources import (
    Dashboard,
    DateRangeFilter,
    GrainFilter,
    SelectFilter,
    Widget,
)
from embedkit.embed.settings import EmbedSettings
from embedkit.embed.theme import Theme
from embedkit.errors import (
    AccessDenied,
    BatchRejected,
    ConfigError,
    DataLoadError,
    EmbedKitError,
    ExecutionError,
    ModelError,
    Problem,
    QueryError,
    TokenError,
    UnknownMemberError,
)
from embedkit.kit import EmbedKit
from embedkit.live.methods import StreamReport
from embedkit.live.policy import Retention
from embedkit.plan import ScopedQuery
from embedkit.query.json import QUERY_JSON_SCHEMA
from embedkit.query.spec import And, Filter, Or, Query, Time
from embedkit.result import QueryResult
from embedkit.security.rules import ColumnRule, Principal, RowRule
from embedkit.semantic.members import Dimension, Join, Measure, Rollup, Segment, TimeDimension
from embedkit.semantic.model import Model
from embedkit.trust.contract import Contract
from embedkit.trust.ingest import BatchReport
from embedkit.trust.quarantine import Quarantine, QuarantinedRow
from embedkit.trust.slo import SLO

__version__ = "0.1.0"

__all__ = [
    "QUERY_JSON_SCHEMA",
    "SLO",
    "SQL",
    "AccessDenied",
    "And",
    "BatchRejected",
    "BatchReport",
    "ColumnRule",
    "ConfigError",
    "Contract",
    "Dashboard",
    "DataLoadError",
    "Dataset",
    "DateRangeFilter",
    "Dimension",
    "EmbedKit",
    "EmbedKitError",
    "EmbedSettings",
    "ExecutionError",
    "Filter",
    "GrainFilter",
    "Join",
    "Measure",
    "MemoryCache",
    "Model",
    "ModelError",
    "Or",
    "Principal",
    "Problem",
    "Quarantine",
    "QuarantinedRow",
    "Query",
    "QueryError",
    "QueryResult",
    "RedisCache",
    "Retention",
    "Rollup",
    "RowRule",
    "ScopedQuery",
    "Segment",
    "SelectFilter",
    "SharedCache",
    "SigningKey",
    "StreamReport",
    "Theme",
    "Time",
    "TimeDimension",
    "TokenError",
    "UnknownMemberError",
    "Widget",
    "__version__",
    "generate_secret",
]
