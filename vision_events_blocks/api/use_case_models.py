"""Use cases (spec §11): create/update bodies, the listings, and the custom-metadata schema."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from pydantic import Field, field_validator, model_validator

from .limits import MAX_USE_CASE_NAME_LENGTH, UseCaseStatus
from .wire import ResponseModel, WireModel

__all__ = [
    "CreateUseCaseRequest", "CustomMetadataSchema", "MetadataFieldSchema", "SuccessResponse", "UpdateUseCaseRequest",
    "UseCase", "UseCaseList", "UseCaseResponse",
]


# --------------------------------------------------------------------------------------------
# Use cases (spec §11)
# --------------------------------------------------------------------------------------------
def _use_case_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("name must not be empty")
    if len(value) > MAX_USE_CASE_NAME_LENGTH:
        raise ValueError(f"name is {len(value)} characters; at most {MAX_USE_CASE_NAME_LENGTH}")
    return value


class CreateUseCaseRequest(WireModel):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _use_case_name(value)


class UpdateUseCaseRequest(WireModel):
    """At least one of ``name`` and ``status``."""

    name: Optional[str] = None
    status: Optional[UseCaseStatus] = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: Optional[str]) -> Optional[str]:
        return _use_case_name(value) if value is not None else None

    @model_validator(mode="after")
    def _something_to_change(self) -> "UpdateUseCaseRequest":
        if self.name is None and self.status is None:
            raise ValueError("update needs at least one of name and status")
        return self




class UseCase(ResponseModel):
    id: str
    name: str
    status: Optional[str] = None
    workspace_id: Optional[str] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    event_count: Optional[int] = None


class UseCaseList(ResponseModel):
    use_cases: List[UseCase] = Field(default_factory=list)
    lookback_days: Optional[int] = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_solutions_key(cls, data: Any) -> Any:
        """Older servers answer ``{"solutions": [...]}``."""
        if isinstance(data, dict) and "useCases" not in data and "solutions" in data:
            data = dict(data)
            data["useCases"] = data.pop("solutions")
        return data


class UseCaseResponse(ResponseModel):
    id: str
    name: Optional[str] = None
    status: Optional[str] = None


class SuccessResponse(ResponseModel):
    success: bool = True


class MetadataFieldSchema(ResponseModel):
    types: List[str] = Field(default_factory=list)


class CustomMetadataSchema(ResponseModel):
    fields: Dict[str, MetadataFieldSchema] = Field(default_factory=dict)
    use_case_id: Optional[str] = None

