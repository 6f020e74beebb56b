"""Pure elementwise transforms of coupling layers: ``(x, params) -> (y, log_det)`` and back."""

from amortflow.networks.inference.transforms.affine import AffineTransform
from amortflow.networks.inference.transforms.base import Transform
from amortflow.networks.inference.transforms.spline import RationalQuadraticSpline

__all__ = ["AffineTransform", "RationalQuadraticSpline", "Transform"]
