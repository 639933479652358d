"""Selection procedures: pick ``budget`` pool indices from scores or features (pure, jittable).

Every procedure here takes ``budget`` as a static Python int, never returns a
non-selectable (labeled or padded) index or a duplicate, and is deterministic for a
given ``key`` (docs/design.md §7). ``check_budget`` is the one shared guard that rejects a
budget larger than the selectable pool.

Memory (k-centre greedy, the only procedure that looks at features): the features
``[N, D]`` (4 N D bytes) plus one block of distances ``[N, block_size]``
(4 N block_size bytes) plus O(N) vectors; never an ``N x N`` matrix. For N = 100 000,
D = 256 and block_size = 256 that is about 102 MB + 102 MB + 2 MB, against 40 GB for a
full distance matrix.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

DistanceFn = Callable[[jax.Array, jax.Array], jax.Array]
"""(x [N, D], y [M, D]) -> [N, M] float32 distances (any monotone dissimilarity)."""


def _budget_error(budget: int, count: int) -> str:
    return (
        f"budget {budget} exceeds the {count} selectable (unlabeled, non-padded) pool "
        f"images; lower al.budget or the number of cycles"
    )


def _raise_if_short(count, budget: int) -> None:
    if int(count) < budget:
        raise ValueError(_budget_error(budget, int(count)))


def check_budget(selectable: ArrayLike, budget: int) -> int:
    """Rejects a budget that the selectable pool cannot fill.

    Used by every ``select`` function. With a concrete ``selectable`` it raises at once;
    under ``jax.jit`` (traced ``selectable``) the count is checked on device by a
    ``jax.debug.callback``, which surfaces as a ``JaxRuntimeError`` carrying the same
    message.

    Args:
      selectable: [N] bool, True for unlabeled, non-padded pool images.
      budget: number of images to select (static).

    Returns:
      ``budget`` as a Python int.

    Raises:
      ValueError: when ``budget`` is negative, not an int, larger than N, or larger
        than the number of selectable images.
    """
    try:
        budget = operator.index(budget)
    except TypeError as e:
        raise ValueError(f"budget must be a static Python int, got {budget!r}") from e
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    n = np.shape(selectable)[0]
    if budget > n:
        raise ValueError(_budget_error(budget, n) + f" (pool size {n})")
    if isinstance(selectable, jax.core.Tracer):
        jax.debug.callback(lambda c: _raise_if_short(c, budget), jnp.sum(selectable))
    else:
        _raise_if_short(np.sum(np.asarray(selectable)), budget)
    return budget


def top_k(scores: ArrayLike, selectable: ArrayLike, budget: int) -> jax.Array:
    """The ``budget`` selectable images with the highest scores.

    NaN scores count as the lowest finite score; infinite scores are clipped to the
    finite range, so a selectable image always outranks a non-selectable one. Ties go
    to the lower index (``jax.lax.top_k``).

    Args:
      scores: [N] float, higher = more informative.
      selectable: [N] bool.
      budget: static int.

    Returns:
      [budget] int32 distinct indices, best first.

    Examples:
      >>> import jax.numpy as jnp
      >>> top_k(jnp.array([0.1, 0.9, 0.5]), jnp.array([True, False, True]), 1).tolist()
      [2]
    """
    budget = check_budget(selectable, budget)
    if budget == 0:
        return jnp.zeros((0,), jnp.int32)
    _, idx = jax.lax.top_k(ranking_priority(scores, selectable), budget)
    return idx.astype(jnp.int32)


def ranking_priority(scores: ArrayLike, selectable: ArrayLike) -> jax.Array:
    """Scores made safe for ``jax.lax.top_k``: any selectable row beats every other row.

    Args:
      scores: [N] float.
      selectable: [N] bool.

    Returns:
      [N] float32: finite scores for selectable rows (NaN -> lowest finite value,
      +-inf clipped), -inf for the others.
    """
    scores = jnp.asarray(scores, jnp.float32)
    big = jnp.finfo(jnp.float32).max
    priority = jnp.where(jnp.isnan(scores), -big, jnp.clip(scores, -big, big))
    return jnp.where(jnp.asarray(selectable, bool), priority, -jnp.inf)


def random_k(selectable: ArrayLike, budget: int, key: jax.Array) -> jax.Array:
    """A uniform random subset of the selectable images (Random baseline, paper IV-B).

    Args:
      selectable: [N] bool.
      budget: static int.
      key: PRNG key; the same key gives the same subset.

    Returns:
      [budget] int32 distinct indices.
    """
    n = np.shape(selectable)[0]
    return top_k(uniform_per_index(key, n), selectable, budget)


def uniform_per_index(key: jax.Array, n: int) -> jax.Array:
    """[n] uniform [0, 1) draws where draw i depends only on (key, i).

    So appending padded rows to a pool never changes the draws of the real rows.
    """
    return jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(jnp.arange(n))


def squared_euclidean(x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared Euclidean distances (Core-set; Sener & Savarese 2018).

    The official Core-set code uses squared L2 and google/active-learning uses L2; the
    greedy picks are identical (sqrt is monotone), so only the squared form is offered.

    Args:
      x: [N, D] float.
      y: [M, D] float.

    Returns:
      [N, M] float32 >= 0.
    """
    x = x.astype(jnp.float32)
    y = y.astype(jnp.float32)
    if y.shape[0] == 1:  # one centre: exact difference form, one pass over x
        return jnp.sum(jnp.square(x - y), axis=-1, keepdims=True)
    x2 = jnp.sum(jnp.square(x), -1)[:, None]  # [N, 1]
    y2 = jnp.sum(jnp.square(y), -1)[None, :]  # [1, M]
    xy = jnp.dot(x, y.T, precision=jax.lax.Precision.HIGHEST)  # [N, M]
    return jnp.maximum(x2 + y2 - 2.0 * xy, 0.0)


def min_distance_to_centers(
    feats: ArrayLike,
    centers: ArrayLike,
    *,
    distance_fn: DistanceFn = squared_euclidean,
    block_size: int = 256,
) -> jax.Array:
    """Distance of every row to its nearest centre row, computed in blocks of centres.

    Only the centre rows are visited (a ``while_loop`` over ceil(#centres / block_size)
    blocks), each costing one ``[N, block_size]`` distance block.

    Args:
      feats: [N, D] float.
      centers: [N] bool, True for centre rows (e.g. the labeled images).
      distance_fn: pairwise distance.
      block_size: centres per block (memory 4 N block_size bytes).

    Returns:
      [N] float32; +inf everywhere when there is no centre.
    """
    feats = jnp.asarray(feats)
    centers = jnp.asarray(centers, bool)
    n = feats.shape[0]
    block_size = max(1, min(block_size, n))
    num_blocks = -(-n // block_size)
    (idx,) = jnp.nonzero(centers, size=num_blocks * block_size, fill_value=0)
    count = jnp.sum(centers)

    def cond(state):
        b, _ = state
        return b * block_size < count

    def body(state):
        b, min_d = state
        start = b * block_size
        block = jax.lax.dynamic_slice(idx, (start,), (block_size,))
        real = start + jnp.arange(block_size) < count  # [block]
        d = distance_fn(feats, feats[block])  # [N, block]
        d = jnp.where(real[None, :] & ~jnp.isnan(d), d, jnp.inf)
        return b + 1, jnp.minimum(min_d, jnp.min(d, axis=1))

    init = (jnp.int32(0), jnp.full((n,), jnp.inf, jnp.float32))
    _, min_d = jax.lax.while_loop(cond, body, init)
    return min_d


def k_center_greedy(
    feats: ArrayLike,
    selectable: ArrayLike,
    budget: int,
    key: jax.Array,
    *,
    centers: ArrayLike | None = None,
    distance_fn: DistanceFn = squared_euclidean,
    block_size: int = 256,
    random_first: bool = False,
) -> jax.Array:
    """Greedy k-centre (Sener & Savarese 2018, Alg. 1): repeatedly take the farthest point.

    min_d = distance of each row to the nearest centre (the labeled set); then, budget
    times: pick the selectable, not yet picked row with the largest min_d and lower
    min_d with the distances to it. The first pick is uniformly random when there is no
    centre (google/active-learning ``kcenter_greedy``) or when ``random_first`` (CDAL's
    ``CDAL_CS.py`` quirk: random even with a labeled set). Ties go to the lower index.

    Memory: see the module docstring (features + one [N, block_size] block + O(N)).
    Time: O(N L D) to seed with L centres, then O(budget N D).

    Args:
      feats: [N, D] float features of the whole pool (labeled rows included).
      selectable: [N] bool, True for candidates.
      budget: static int.
      key: PRNG key (only used for a random first pick).
      centers: [N] bool initial centres (must not be selectable); None = no centres.
      distance_fn: pairwise distance (e.g. ``squared_euclidean``, CDAL's symmetric KL).
      block_size: centres per distance block.
      random_first: always pick the first point at random.

    Returns:
      [budget] int32 distinct selectable indices in pick order.
    """
    budget = check_budget(selectable, budget)
    feats = jnp.asarray(feats)
    selectable = jnp.asarray(selectable, bool)
    n = feats.shape[0]
    if budget == 0:
        return jnp.zeros((0,), jnp.int32)
    if centers is None:
        centers = jnp.zeros((n,), bool)
    centers = jnp.asarray(centers, bool) & ~selectable
    min_d = min_distance_to_centers(feats, centers, distance_fn=distance_fn, block_size=block_size)
    first_random = jnp.logical_or(random_first, ~jnp.any(centers))
    noise = uniform_per_index(key, n)

    def body(t, carry):
        min_d, picked, picks = carry
        candidate = selectable & ~picked
        farthest = jnp.argmax(jnp.where(candidate, min_d, -jnp.inf))
        lucky = jnp.argmax(jnp.where(candidate, noise, -1.0))
        i = jnp.where((t == 0) & first_random, lucky, farthest)
        d = distance_fn(feats, feats[i][None])[:, 0]  # [N]
        d = jnp.where(jnp.isnan(d), jnp.inf, d)
        return jnp.minimum(min_d, d), picked.at[i].set(True), picks.at[t].set(i)

    init = (min_d, jnp.zeros((n,), bool), jnp.zeros((budget,), jnp.int32))
    _, _, picks = jax.lax.fori_loop(0, budget, body, init)
    return picks


def top_k_select(
    scores: jax.Array, feats: jax.Array, selectable: jax.Array, budget: int, key: jax.Array
) -> jax.Array:
    """``top_k`` in the strategy protocol's ``select`` signature (features and key unused).

    Deterministic: ties go to the lower pool index.
    """
    del feats, key
    return top_k(scores, selectable, budget)
