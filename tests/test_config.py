"""The run config: defaults validate, every bad value raises a ConfigError that names it, overrides parse."""

import json
import math
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlfound import config
from dlfound.config import Config
from dlfound.errors import ConfigError, unknown_name

try:  # the dataset registry is optional here: config tests must not depend on the loaders
    from dlfound.data import registry as _registry

    _HAVE_REGISTRY = callable(getattr(_registry, "check_name", None))
except Exception:  # noqa: BLE001 - a loader module that does not import yet
    _HAVE_REGISTRY = False

_STUB_DATASETS = ("mnist1d", "mnist", "fashion_mnist", "xor")


def _stub_check_name(name):
    if name not in _STUB_DATASETS:
        raise unknown_name("dataset", name, _STUB_DATASETS)


@pytest.fixture(autouse=True, scope="module")
def dataset_registry():
    """The real `dlfound.data.registry.check_name` when it imports, else a stub with its contract."""
    if _HAVE_REGISTRY:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        stub = types.ModuleType("dlfound.data.registry")
        stub.check_name = _stub_check_name
        package = sys.modules.get("dlfound.data") or types.ModuleType("dlfound.data")
        mp.setitem(sys.modules, "dlfound.data", package)
        mp.setattr(package, "registry", stub, raising=False)
        mp.setitem(sys.modules, "dlfound.data.registry", stub)
        yield


def test_defaults_validate():
    cfg = Config()
    assert config.validate(cfg) is cfg
    assert cfg.widths == (cfg.width,) * cfg.depth


# (field, bad value, a fragment of the allowed values that the message must state)
BAD_VALUES = [
    ("depth", -1, "from 0 to 1024"),
    ("depth", 2.5, "integer"),
    ("width", 0, "from 1 to 65536"),
    ("width", (128, 64, 32), "tuple of 2"),
    ("width", (128, 0), "tuple of 2"),
    ("activation", "relux", "relu"),
    ("init", "hee", "he"),
    ("norm", "group", "batch, layer"),
    ("learning_rate", 0.0, "> 0"),
    ("learning_rate", math.nan, "finite"),
    ("learning_rate", math.inf, "finite"),
    ("learning_rate", -1.0, "> 0"),
    ("momentum", 1.0, "momentum < 1"),
    ("dropout_rate", 1.0, "rate < 1"),
    ("batch_size", 0, "from 1 to"),
    ("num_epochs", 0, "from 1 to 100000"),
    ("eval_every_epochs", 2, "divisor of num_epochs=5"),
    ("label_noise", 2.0, "<= 1"),
    ("train_fraction", 0.0, "0 < fraction"),
    ("validation_fraction", 1.0, "fraction < 1"),
    ("seed", -1, ">= 0"),
    ("optimizer", "adma", "adam"),
    ("schedule", "cosin", "cosine"),
    ("loss", "crossentropy", "cross_entropy"),
    ("weight_decay", -0.1, ">= 0"),
    ("warmup_steps", -5, "from 0 to 2**31 - 1"),
    ("grad_clip_norm", -1.0, ">= 0"),
    ("init_scale", 0.0, "> 0"),
    ("residual", "yes", "true or false"),
    ("dataset", "mnits", "mnist1d"),
]


@pytest.mark.parametrize("field,value,allowed", BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_bad_value_raises_config_error_naming_field_value_and_choices(field, value, allowed):
    cfg = Config().replace(**{field: value})
    with pytest.raises(ConfigError) as info:
        config.validate(cfg)
    message = str(info.value)
    assert field in message, message
    assert repr(value) in message, message
    assert allowed in message, message


@pytest.mark.parametrize("field,typo,valid", [
    ("activation", "relux", ("relu", "tanh", "sigmoid", "identity")),
    ("init", "hee", ("he", "glorot", "orthogonal", "zeros")),
    ("optimizer", "adma", ("sgd", "momentum", "adam", "adamw")),
    ("schedule", "cosin", ("constant", "cosine", "warmup_cosine")),
    ("loss", "crossentropy", ("cross_entropy", "mse", "bce", "sigmoid_mse")),
])
def test_name_typo_lists_every_valid_choice(field, typo, valid):
    with pytest.raises(ConfigError, match=f"unknown {field} '{typo}'; valid choices: ") as info:
        config.validate(Config().replace(**{field: typo}))
    for name in valid:
        assert name in str(info.value)


def test_eval_every_epochs_must_divide_num_epochs():
    config.validate(Config(num_epochs=6, eval_every_epochs=3))
    with pytest.raises(ConfigError, match="eval_every_epochs=4; allowed: a divisor of num_epochs=6"):
        config.validate(Config(num_epochs=6, eval_every_epochs=4))


def test_width_tuple_must_have_one_entry_per_hidden_layer():
    cfg = config.validate(Config(depth=3, width=(32, 16, 8)))
    assert cfg.widths == (32, 16, 8)
    assert config.validate(Config(depth=0, width=())).widths == ()
    with pytest.raises(ConfigError, match=r"width=\(32, 16\); allowed: .*tuple of 3"):
        config.validate(Config(depth=3, width=(32, 16)))


def test_boundary_values_are_accepted():
    config.validate(Config(depth=0, momentum=0.0, dropout_rate=0.0, label_noise=1.0, train_fraction=1.0,
                           validation_fraction=0.0, seed=0, weight_decay=0.0, norm="layer"))
    config.validate(Config(label_noise=0.0, norm="batch", batch_size=1))


def test_replace_rejects_unknown_field_and_names_valid_ones():
    with pytest.raises(ConfigError, match="unknown config field 'detph'; valid fields: .*depth"):
        Config().replace(detph=3)


def test_resolved_init_follows_activation():
    assert Config(activation="relu").resolved_init == "he"
    assert Config(activation="gelu").resolved_init == "he"
    assert Config(activation="tanh").resolved_init == "glorot"
    assert Config(activation="identity").resolved_init == "glorot"
    assert Config(activation="tanh", init="orthogonal").resolved_init == "orthogonal"


def test_apply_overrides_parses_each_type():
    cfg = config.apply_overrides(Config(norm="batch"), [
        "depth=3", "width=128,64,32", "learning_rate=3e-4", "momentum=0.5", "residual=true",
        "norm=None", "activation=tanh", "num_epochs=10", "eval_every_epochs=5", "label_noise=0.25",
    ])
    assert cfg.depth == 3 and type(cfg.depth) is int
    assert cfg.width == (128, 64, 32)
    assert cfg.learning_rate == 3e-4 and type(cfg.learning_rate) is float
    assert cfg.momentum == 0.5
    assert cfg.residual is True
    assert cfg.norm is None
    assert cfg.activation == "tanh"
    assert (cfg.num_epochs, cfg.eval_every_epochs, cfg.label_noise) == (10, 5, 0.25)


@pytest.mark.parametrize("text,expected", [
    ("32", 32), ("128,64", (128, 64)), (" 128, 64 ", (128, 64)), ("(128,64)", (128, 64)),
    ("[128,64]", (128, 64)), ("16,", (16,)),
])
def test_parse_width(text, expected):
    assert config.parse_value("width", text) == expected


@pytest.mark.parametrize("text,expected", [
    ("true", True), ("True", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("no", False),
])
def test_parse_bool(text, expected):
    assert config.parse_value("residual", text) is expected


@pytest.mark.parametrize("text", ["none", "None", "null", ""])
def test_parse_none_for_optional_norm(text):
    assert config.parse_value("norm", text) is None
    assert config.parse_value("norm", "layer") == "layer"


def test_parse_int_field_gives_int_and_float_field_gives_float():
    assert config.parse_value("batch_size", "32") == 32
    assert config.parse_value("learning_rate", "1") == 1.0
    assert isinstance(config.parse_value("learning_rate", "1"), float)


@pytest.mark.parametrize("item,fragment", [
    ("depth=abc", "invalid depth='abc'; allowed: an integer"),
    ("learning_rate=fast", "invalid learning_rate='fast'; allowed: a number"),
    ("residual=maybe", "invalid residual='maybe'; allowed: true or false"),
    ("width=a,b", "invalid width='a,b'"),
    ("width=", "invalid width=''"),
    ("depth", "expected key=value"),
    ("detph=3", "unknown config field 'detph'; valid fields: "),
    ("learning_rate=nan", "learning_rate=nan"),
    ("depth=2.5", "invalid depth='2.5'"),
])
def test_apply_overrides_bad_items_raise_config_error(item, fragment):
    with pytest.raises(ConfigError) as info:
        config.apply_overrides(Config(), [item])
    assert fragment in str(info.value)


def test_unknown_override_key_lists_every_field():
    with pytest.raises(ConfigError) as info:
        config.apply_overrides(Config(), ["lr=0.1"])
    for name in config.field_names():
        assert name in str(info.value)


def test_apply_overrides_validates_the_result():
    with pytest.raises(ConfigError, match="width=\\(128, 64\\)"):
        config.apply_overrides(Config(depth=3), ["width=128,64"])


def test_check_batch_size():
    cfg = Config(batch_size=64, dataset="mnist1d")
    config.check_batch_size(cfg, 64)
    config.check_batch_size(cfg, 1000)
    expected = "batch_size=64; allowed: at most the 50 training examples of 'mnist1d'"
    with pytest.raises(ConfigError, match=expected):
        config.check_batch_size(cfg, 50)


@pytest.mark.parametrize("cfg", [
    Config(),
    Config(depth=3, width=(32, 16, 8), activation="tanh", norm="layer", residual=True, learning_rate=0.05),
    Config(depth=0, width=(), init="orthogonal", optimizer="sgd", schedule="warmup_cosine", warmup_steps=10),
])
def test_dict_round_trip(cfg):
    values = cfg.to_dict()
    assert values["resolved_init"] == cfg.resolved_init
    assert not isinstance(values["width"], tuple)
    assert Config.from_dict(values) == cfg
    assert Config.from_dict(json.loads(json.dumps(values))) == cfg


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown config field 'colour'"):
        Config.from_dict({**Config().to_dict(), "colour": "red"})


def test_npz_path_with_unknown_home_is_config_error():
    with pytest.raises(ConfigError):
        config.apply_overrides(Config(), ["dataset=npz:~no_such_user_dlfound/x.npz"])


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(config.field_names()), text=st.text(max_size=20))
def test_random_override_values_only_raise_config_error(field, text):
    try:
        cfg = config.apply_overrides(Config(), [f"{field}={text}"])
    except ConfigError:
        return
    assert isinstance(cfg, Config)
    assert config.validate(cfg) is cfg


@settings(max_examples=200, deadline=None)
@given(item=st.text(max_size=30))
def test_random_override_items_only_raise_config_error(item):
    try:
        config.apply_overrides(Config(), [item])
    except ConfigError:
        pass
