"""The classic featuriser on hand-made products: facts from details, else from text."""

import math

from bench.types import Product
from predictors.classic import features


def _product(description: str, details=None, category=None, title=None) -> Product:
    return Product(id=1, title=title or description.split("\n")[0], description=description,
                   prompt=description + "\n\nPrice is $", category=category, details=details)


def _row(product: Product) -> dict[str, float]:
    return dict(zip(features.NUMERIC_COLUMNS, features.numeric_features(product), strict=True))


def test_facts_come_from_details_when_present():
    details = {
        "Brand": "Motorcraft",
        "Item Weight": "12 ounces",
        "Product Dimensions": "10 x 5 x 2 inches",
        "Best Sellers Rank": {"Automotive": 992141, "Engine Fan Clutches": 583},
        "Date First Available": "October 10, 2007",
    }
    # The text says other things: the table wins.
    row = _row(_product("Motorcraft YB3125 Fan Clutch\nWeight 99 pounds", details))
    assert row["weight_lb"] == 0.75
    assert row["volume_in3"] == 100 and row["longest_in"] == 10
    assert row["rank_top"] == 992141 and row["rank_sub"] == 583
    assert row["year_available"] == 2007 + 9 / 12
    assert row["has_brand"] == 1.0


def test_facts_are_parsed_from_text_without_details():
    text = ("Acme Drill Press\nSturdy bench drill, 20V cordless, 2-pack. Brand Acme, Weight "
            "2.5 kilograms, Dimensions 25.4 cm x 50.8 cm x 10 cm, Rank Tools Power Drills "
            "1,234, Available March 3, 2019, 1 TB of manuals")
    row = _row(_product(text))
    assert math.isclose(row["weight_lb"], 2.5 * 2.20462)
    assert math.isclose(row["longest_in"], 50.8 * 0.393701)
    assert math.isclose(row["volume_in3"], 25.4 * 50.8 * 10 * 0.393701**3)
    assert row["rank_sub"] == 1234 and math.isnan(row["rank_top"])
    assert row["year_available"] == 2019 + 2 / 12
    assert row["max_volts"] == 20 and row["pack_count"] == 2 and row["storage_gb"] == 1024
    assert features.brand(_product(text)) == "acme"


def test_a_bare_product_gives_missing_facts_not_zeros():
    row = _row(_product("Widget"))
    for column in ("weight_lb", "volume_in3", "longest_in", "rank_top", "rank_sub",
                   "year_available", "max_volts", "max_watts", "pack_count", "storage_gb"):
        assert math.isnan(row[column]), column
    assert row["has_brand"] == 0.0 and row["words"] == 1


def test_inch_marks_and_side_letters_in_dimensions():
    volume, longest = features.dimensions_inches(
        {"Product Dimensions": '3.2"D x 28.8"W x 17.4"H'}, "")
    assert longest == 28.8 and math.isclose(volume, 3.2 * 28.8 * 17.4)


def test_model_text_adds_category_and_brand_tokens():
    with_details = _product("Gizmo 3000\nA gizmo", {"Brand": "Giz-Co"}, "Electronics")
    text = features.model_text(with_details)
    assert text.startswith("Gizmo 3000\nA gizmo")
    assert "category_electronics" in text and "brandkey_gizco" in text
    # Without details, the title's first word stands in for the brand.
    assert "brandkey_gizmo" in features.model_text(_product("Gizmo 3000\nA gizmo"))


def test_rows_have_one_value_per_column():
    products = [_product("A\nb"), _product("C 5 lbs\nd", {"Brand": "x"})]
    matrix = features.numeric_matrix(products)
    assert [len(r) for r in matrix] == [len(features.NUMERIC_COLUMNS)] * 2
