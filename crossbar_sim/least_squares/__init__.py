"""The least-squares task of arXiv 2406.12774 and its training loops on tiles (digital SGD, analog SGD,
the Tiki-Taka family): :mod:`.task`, :mod:`.training`."""
