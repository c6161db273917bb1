"""The API layer owns the vocabulary: each word, limit and rule is written once, in ``api``,
and every other layer agrees with it because it imports it."""
from __future__ import annotations

import ast
import tarfile
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

import vision_events_blocks
from support import IMAGES
from vision_events_blocks import api
from vision_events_blocks.api import media, models
from vision_events_blocks.api._base import default_user_agent
from vision_events_blocks.api.bundles import BundleImage, write_bundle
from vision_events_blocks.mapping import sniff_image_type

PACKAGE = Path(vision_events_blocks.__file__).parent


def test_models_export_exactly_their_all():
    public = {name for name in vars(models) if not name.startswith("_")}
    assert {"re", "math", "Field", "BaseModel"}.isdisjoint(set(models.__all__))
    assert set(models.__all__) <= public
    assert all(getattr(api, name) is getattr(models, name) for name in models.__all__)
    assert {"re", "math", "Field"}.isdisjoint(api.__all__)


def test_event_types_and_statuses_are_derived_from_their_types():
    assert models.EVENT_TYPES == get_args(models.EventType) == tuple(models.EVENT_DATA_MODELS)
    assert models.USE_CASE_STATUSES == get_args(models.UseCaseStatus) == ("active", "inactive")


def test_the_cli_offers_exactly_the_api_statuses():
    from vision_events_blocks.cli import main

    result = CliRunner().invoke(main, ["use-cases", "list", "--status", "archived"])
    assert result.exit_code == 2
    assert all(repr(status) in result.output for status in models.USE_CASE_STATUSES), result.output


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_every_spec_image_type_is_sniffed_to_its_extension_and_content_type(kind):
    ext = media.sniff_image(IMAGES[kind])
    assert ext is not None and media.CONTENT_TYPES[ext] == f"image/{kind}"
    assert media.extension_for(media.CONTENT_TYPES[ext]) == ext


def test_mapping_passes_through_only_the_types_whose_size_it_reads():
    assert sniff_image_type(IMAGES["png"]) == "image/png"
    assert sniff_image_type(IMAGES["gif"]) is None


def test_a_bundle_names_its_members_with_the_api_extensions(tmp_path):
    event = {"eventId": "e1", "eventType": "custom", "timestamp": "2026-01-01T00:00:00Z", "images": [{}]}
    path = write_bundle(tmp_path, event, images=[BundleImage(output=IMAGES["webp"])])
    with tarfile.open(path) as archive:
        assert any(name.endswith(".webp") for name in archive.getnames())


def test_the_version_lives_in_a_module_of_its_own_and_api_never_imports_the_package_root():
    assert vision_events_blocks.__version__ in default_user_agent()
    for path in (PACKAGE / "api").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module is None:  # from .. import x
                pytest.fail(f"api/{path.name} imports the package root")
