"""The docs/python_api.md import path of the t2i API."""


def test_public_names_import_from_the_package():
    from t2i import Box, TextToImage
    from t2i.pipeline import Box as PipelineBox
    from t2i.pipeline import TextToImage as PipelineTextToImage

    assert Box is PipelineBox and TextToImage is PipelineTextToImage
    box = Box("circle", 0.1, 0.4, 0.3, 0.3)
    assert (box.label, box.x, box.w, box.mask) == ("circle", 0.1, 0.3, None)
