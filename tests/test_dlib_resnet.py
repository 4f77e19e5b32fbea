"""dlib's face-descriptor network run by torch gives dlib's own descriptors, on real faces.

The faces are the bundled photos (real people, MIT licence); boxes and landmarks come from MTCNN, as
in the pipeline, and dlib aligns them. The torch runtime must agree with dlib's to float rounding,
one face at a time or in batches, and a file that is not a dlib network fails naming the file.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from marquee.ops.faces.detect import MTCNNDetector
from marquee.ops.faces.dlib_resnet import DlibFormatError, DlibResnetTorch, read_dlib_net
from marquee.ops.faces.embed import DlibEmbedder, _face_recognition_models_dir
from marquee.ops.faces.quality import FaceCrop
from marquee.synth.media import bundled_media_dir

NET_FILE = DlibEmbedder.RESNET_FILE
PEOPLE = ("obama", "biden", "kit_harington", "rose_leslie")


@pytest.fixture(scope="module")
def faces() -> list[tuple[str, FaceCrop]]:
    """(identity, face) for every face MTCNN finds in the bundled portraits of ``PEOPLE``."""
    detector = MTCNNDetector()
    out = []
    for person in PEOPLE:
        for path in sorted((bundled_media_dir() / "faces" / person).glob("*.jpg")):
            image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            found = detector.detect(image)
            best = int(np.argmax(found.scores))
            out.append((person, FaceCrop(image, found.boxes[best], found.landmarks[best])))
    assert len(out) >= 6
    return out


def test_torch_runtime_gives_dlibs_descriptors_on_real_faces(faces):
    torch_runtime = DlibEmbedder(runtime="torch", device="cpu", batch_size=4)
    dlib_runtime = DlibEmbedder(runtime="dlib")
    crops = [f for _, f in faces]
    ours, theirs = torch_runtime.embed(crops), dlib_runtime.embed(crops)
    assert ours.shape == theirs.shape == (len(crops), 128)
    assert np.abs(ours - theirs).max() < 1e-4
    # Same meaning: dlib's same-person rule (distance < 0.6) decides the same pairs either way.
    names = [n for n, _ in faces]
    for a in range(len(crops)):
        for b in range(a + 1, len(crops)):
            d_ours = np.linalg.norm(ours[a] - ours[b])
            d_theirs = np.linalg.norm(theirs[a] - theirs[b])
            assert abs(d_ours - d_theirs) < 1e-4
            assert (d_ours < 0.6) == (names[a] == names[b]), (names[a], names[b], d_ours)


def test_batches_and_single_faces_agree(faces):
    embedder = DlibEmbedder(device="cpu", batch_size=3)
    chips = embedder.prepare([f for _, f in faces])
    batched = embedder.describe(chips)
    one_by_one = np.concatenate([embedder.describe([c]) for c in chips])
    assert np.abs(batched - one_by_one).max() < 1e-4
    assert embedder.describe([]).shape == (0, 128)


def test_the_network_is_read_from_the_file():
    net = read_dlib_net(_face_recognition_models_dir() / NET_FILE)
    kinds = [layer.kind for layer in net.layers]
    assert net.size == (150, 150)
    assert kinds.count("con") == 29 and kinds[-1] == "fc"
    assert net.layers[-1].ints == {"in": 256, "out": 128}
    assert all(abs(m - e) < 1e-3 for m, e in zip(net.means, (122.782, 117.001, 104.298), strict=True))


def test_a_file_that_is_not_a_dlib_network_fails_naming_it(tmp_path: Path):
    junk = tmp_path / "not_a_net.dat"
    junk.write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(DlibFormatError, match=r"not_a_net\.dat"):
        DlibResnetTorch(junk)
    real = (_face_recognition_models_dir() / NET_FILE).read_bytes()
    cut = tmp_path / "truncated.dat"
    cut.write_bytes(real[: len(real) // 2])
    with pytest.raises(DlibFormatError, match=r"truncated\.dat"):
        read_dlib_net(cut)


def test_unknown_runtime_and_jitter_without_dlib_are_refused():
    with pytest.raises(ValueError, match="runtime"):
        DlibEmbedder(runtime="onnx")
    with pytest.raises(ValueError, match="num_jitters"):
        DlibEmbedder(num_jitters=2)
