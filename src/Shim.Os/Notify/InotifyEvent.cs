namespace Shim.Os.Notify;

/// <summary>One inotify event: the watch it belongs to, its IN_* bits and, for directory watches, the entry name.</summary>
public readonly record struct InotifyEvent(int Wd, uint Mask, string? Name);
