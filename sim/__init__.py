"""funnelsim package."""

# Importing the statistics layer switches numpy's huge-page advice off (unless the user set
# numpy's own switch): experiments.stats.no_hugepage_advice, measured on the engine too.
import experiments.stats  # noqa: F401
