"""Crossbar tiles: every tile kind and the periphery their MVMs go through.

* :mod:`.params` -- the configuration of a tile: ``IOParameters`` (periphery), ``UpdateParameters`` (pulse
  scheme), ``TileConfig``;
* :mod:`.periphery` -- the forward/backward MVM pipeline (DAC, noise, ADC, noise and bound management);
* :mod:`.analog` -- ``TileBase`` (shared MVMs, random-stream state, update-argument checks) and ``AnalogTile``;
* :mod:`.onesided` -- the one-sided device pair with refresh (PCM);
* :mod:`.tiki_taka` -- Tiki-Taka v1 (``TikiTakaTile``, ``TransferCompound``);
* :mod:`.buffered` -- TTv2, chopped TTv2 and AGAD (``BufferedTransferTile``).
"""
