"""Result tables wrap long names and counts onto more lines instead of cutting them."""

from rich.console import Console

from crm_modes.cli.tables import wrapping_table


def test_a_narrow_terminal_wraps_names_and_counts_without_cutting_them():
    name = "NumOfProducts_to_EstimatedSalary_ratio_in_a_long_name"
    table = wrapping_table("feature", "rows quarantined")
    table.add_row(name, "1,234,567,890")
    console = Console(width=30, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    rows = [line.split("│")[1:3] for line in text.splitlines() if line.count("│") == 3]
    first, second = ("".join(cell[i].strip() for cell in rows) for i in (0, 1))
    assert name in first  # folded over several lines, every character kept
    assert "1,234,567,890" in second
    assert "…" not in text
