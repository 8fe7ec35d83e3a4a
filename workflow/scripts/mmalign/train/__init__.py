"""Stage 3 (workflow/rules/train.smk): alignment variants trained with TRL (``dpo``), one method registry
(``methods``), one layer of settings (``settings``), launched on one process or several (``launch``)."""
