"""Weight space: path families and their grids, checked affine combinations, merge methods
(TIES, DARE, SLERP, mergekit YAML), recipes, norms.

`paths`, `labels`, `families` and `mergekit_yaml` are pure Python (the Snakefile builds grids
from them at parse time); `merge`, `methods`, `recipes` and `norms` do the tensor work.
"""

from lmlerp._lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "FAMILIES": "paths",
        "Interpolator": "merge",
        "Point": "paths",
        "Recipe": "recipes",
        "check_compatible": "recipes",
        "coefficients": "paths",
        "combine": "merge",
        "decorrelated": "paths",
        "g1": "paths",
        "g2": "paths",
        "g3": "paths",
        "materialize": "recipes",
        "number": "labels",
        "points": "paths",
        "weight_difference_norms": "norms",
        "weights_sha256": "recipes",
    },
)
