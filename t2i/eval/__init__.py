"""t2i evaluation: SOA and colour binding (soa), the trained judges (judges), fd_local features
(image_features), Inception FID and IS (inception), layout scores (layout_metrics), R-precision (retrieval).

`t2i eval` (t2i.commands.evaluate) imports these modules when it runs.
"""
