"""Pure array operations: box formats and IoU (``boxes``), batched crop-and-resize
(``crops``) and the augmentations of CALD-style views (``augment``)."""
