"""Containers: Sequential, ModuleList and ModuleDict, with PyTorch's names and methods.

A Module finds its parts among its attributes, so a container keeps each part
as an attribute: named "0", "1", ... in a Sequential or ModuleList, named by
its key in a ModuleDict. Everything that walks a network (``parameters()``,
``state_dict()`` with names such as ``blocks.0.conv.weight``, ``to()``,
``train()``) then sees them like any other part.
"""
import numbers

from .module import Module


def _require_module(op, value):
    if not isinstance(value, Module):
        raise TypeError(f"{op}: expected a Module, got {type(value).__name__}")
    return value


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: a list of Modules kept as attributes "0", "1", ..."""

    def _items(self):
        return [value for name, value in vars(self).items() if name.isdigit()]  # kept in index order

    def _set_items(self, modules):
        modules = [_require_module(type(self).__name__, module) for module in modules]
        for name in [name for name in vars(self) if name.isdigit()]:
            object.__delattr__(self, name)
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def _index(self, index):
        count = len(self)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not -count <= index < count:
            raise IndexError(f"{type(self).__name__}: index {index!r} is out of range for {count} modules")
        return int(index) % count

    def __len__(self):
        return len(self._items())

    def __iter__(self):
        return iter(self._items())

    def __getitem__(self, index):
        if isinstance(index, slice):
            part = type(self).__new__(type(self))
            part._set_items(self._items()[index])
            return part
        return self._items()[self._index(index)]

    def __setitem__(self, index, module):
        setattr(self, str(self._index(index)), _require_module(type(self).__name__, module))

    def __delitem__(self, index):
        items = self._items()
        del items[index if isinstance(index, slice) else self._index(index)]
        self._set_items(items)

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        setattr(self, str(len(self)), _require_module(f"{type(self).__name__}.append", module))
        return self

    def extend(self, modules):
        """Add each of ``modules`` at the end; returns self."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Put ``module`` before position ``index`` (as list.insert does)."""
        items = self._items()
        items.insert(index, module)
        self._set_items(items)

    def pop(self, index=-1):
        """Remove and return the module at ``index`` (the last one by default)."""
        module = self[index]
        del self[index]
        return module

    def __iadd__(self, modules):
        return self.extend(modules)


class Sequential(_ModuleSequence):
    """Modules applied one after another: ``Sequential(conv, relu, pool)(x)``."""

    def __init__(self, *modules):
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} must be a Module, got {type(module).__name__}")
        self._set_items(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class ModuleList(_ModuleSequence):
    """A list of Modules whose parameters the owning Module sees (``self.blocks = nn.ModuleList(...)``).

    It has no forward of its own: the owner decides how its modules are called.
    """

    def __init__(self, modules=None):
        if modules is not None:
            self.extend(modules)


class ModuleDict(Module):
    """A dict of Modules by name whose parameters the owning Module sees (``self.heads["aux1"]``).

    Keys are strings without "." (which separates names in a state_dict) and
    may not be a name ModuleDict already has (``keys``, ``forward``, ``training``...).
    """

    def __init__(self, modules=None):
        if modules is not None:
            self.update(modules)

    def _check_key(self, key):
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: a key must be a non-empty string without '.', got {key!r}")
        if hasattr(type(self), key) or (key in vars(self) and not isinstance(vars(self)[key], Module)):
            raise KeyError(f"ModuleDict: the key {key!r} is already the name of a ModuleDict attribute; "
                           "choose another")
        return key

    def __getitem__(self, key):
        if key not in self:
            raise KeyError(f"ModuleDict has no key {key!r}; its keys are {self.keys()}")
        return vars(self)[key]

    def __setitem__(self, key, module):
        setattr(self, self._check_key(key), _require_module(f"ModuleDict[{key!r}]", module))

    def __delitem__(self, key):
        self[key]  # noqa: B018 (raises the KeyError for a missing key)
        object.__delattr__(self, key)

    def __contains__(self, key):
        return isinstance(key, str) and isinstance(vars(self).get(key), Module)

    def __len__(self):
        return len(self.keys())

    def __iter__(self):
        return iter(self.keys())

    def keys(self):
        return [name for name, _ in self.named_children()]

    def values(self):
        return [module for _, module in self.named_children()]

    def items(self):
        return list(self.named_children())

    def pop(self, key):
        """Remove and return the module under ``key``."""
        module = self[key]
        del self[key]
        return module

    def clear(self):
        for key in self.keys():
            del self[key]

    def update(self, modules):
        """Add (or replace) modules from a dict or from (key, module) pairs."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module
