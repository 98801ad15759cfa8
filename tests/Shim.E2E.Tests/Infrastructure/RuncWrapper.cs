namespace Shim.E2E.Tests;

/// <summary>
/// A <c>runc</c> of a test's own: a shell script in <see cref="Dir"/> (put that folder first on a
/// private containerd's PATH with <see cref="ContainerdOptions.PathFirst"/>; both shims look runc up
/// on the PATH they inherit) that runs the test's current <see cref="Before"/> snippet, then execs
/// the line's real runc with the same arguments. The snippet sees runc's subcommand as
/// <c>$verb</c>, the arguments as <c>"$@"</c> and this folder as <c>$dir</c>; what it appends to
/// <c>$dir/record</c> the test reads back with <see cref="Record"/>. Disposing removes the folder.
/// </summary>
internal sealed class RuncWrapper : IDisposable
{
    private RuncWrapper(string dir) => Dir = dir;

    /// <summary>A snippet line that sets <c>$spec</c> to the <c>--process</c> file of a <c>runc exec</c> (both shims pass it, as one JSON line).</summary>
    public const string FindProcessSpec =
        "spec= prev=; for a in \"$@\"; do case \"$a\" in --process=*) spec=${a#--process=} ;; esac; [ \"$prev\" = --process ] && spec=$a; prev=$a; done";

    /// <summary>The folder holding <c>runc</c>; goes first on the daemon's PATH.</summary>
    public string Dir { get; }

    private string RecordPath => Path.Combine(Dir, "record");

    /// <summary>Writes the wrapper around the runc of <paramref name="line"/>, with an empty snippet.</summary>
    public static RuncWrapper Create(ContainerdLine line)
    {
        var real = line.RuncPath ?? Prereqs.Which("runc") ?? throw new InvalidOperationException("no runc on PATH");
        var wrapper = new RuncWrapper(Directory.CreateTempSubdirectory("rcs-runcw-").FullName);
        wrapper.Before("");
        // the verb is the first argument that is neither a global flag nor a global flag's value
        // (the shims put --root/--log/--log-format before it; runc's own --criu/--rootless take one too)
        var script = $$"""
            #!/bin/sh
            dir='{{wrapper.Dir}}'
            verb=
            skip=
            for a in "$@"; do
              if [ -n "$skip" ]; then skip=; continue; fi
              case "$a" in
                --root|--log|--log-format|--criu|--rootless) skip=1 ;;
                -*) ;;
                *) verb=$a; break ;;
              esac
            done
            . "$dir/before.sh"
            exec '{{real}}' "$@"

            """;
        var path = Path.Combine(wrapper.Dir, "runc");
        File.WriteAllText(path, script);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return wrapper;
    }

    /// <summary>Replaces the shell snippet every later runc call runs before the real runc (it may <c>exec</c> something else instead).</summary>
    public void Before(string shell)
    {
        // written aside and renamed: a runc call in flight reads the old snippet or the new one, never half
        var temp = Path.Combine(Dir, "before.sh.new");
        File.WriteAllText(temp, shell + "\n");
        File.Move(temp, Path.Combine(Dir, "before.sh"), overwrite: true);
    }

    /// <summary>The lines the snippets appended to <c>$dir/record</c> so far.</summary>
    public string[] Record() =>
        File.Exists(RecordPath) ? File.ReadAllLines(RecordPath) : [];

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException e) { TestContext.Current.TestOutputHelper?.WriteLine($"cleanup: could not remove {Dir}: {e.Message}"); }
    }
}
