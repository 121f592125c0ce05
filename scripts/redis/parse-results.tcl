# Parses one runtest log for scripts/redis-dropin.sh (scripts/redis/suites.sh).
# Prints "COUNTS ok err exception skipped" first, then "REASONS ...", then
# the lists. Args: LOG RUNTEST_RC DENIED_TAGS TESTDIR SUITE...
lassign $argv logf rc denied testdir
set suites [lrange $argv 4 end]
set f [open $logf]; set log [read $f]; close $f
regsub -all {\x1b\[[0-9;]*m} $log {} log
set ok {}; set err {}; set exc {}; set skip {}; set ign {}; set blockign {}
set lines [split $log \n]
for {set i 0} {$i < [llength $lines]} {incr i} {
    set l [lindex $lines $i]
    if {[regexp {^\[ok\]: (.*) \([0-9]+ ms\)$} $l -> n]} { lappend ok $n
    } elseif {[regexp {^\[err\]: (.*)$} $l -> n]} {
        regsub { in tests/[^ ]+\.tcl$} $n {} n
        lappend err [list $n [string trim [lindex $lines [expr {$i+1}]]]]
    } elseif {[regexp {^\[exception\]: (.*)$} $l -> n]} {
        lappend exc [join [list $n [string trim [lindex $lines [expr {$i+2}]]]] " | "]
    } elseif {[regexp {\[TIMEOUT\]} $l]} { lappend exc $l
    } elseif {[regexp {^\[skip\]: (.*)$} $l -> n]} { lappend skip $n
    } elseif {[regexp {^\[ignore\]: (.*)$} $l -> n]} {
        if {[regexp {^(.*): ([^:]+)$} $n -> tn why] && ![string match "Tag: *" $n]} {
            lappend ign [list $tn $why]
        } else { lappend blockign $n }
    }
}
if {$rc != 0 && [llength $err] == 0 && [llength $exc] == 0} {
    lappend exc "runtest exited with status $rc without reporting a failed test"
}
set seen $ok
foreach e $err { lappend seen [lindex $e 0] }
foreach s $skip { lappend seen $s }
foreach s $ign { lappend seen [lindex $s 0] }

# A test's name as a glob: Tcl substitutions in "quoted" names match anything.
proc esc {c} { if {[string first $c "*?\[\]\\"] >= 0} { return "\\$c" }; return $c }
proc name_glob {raw quoted} {
    set out ""; set n [string length $raw]
    for {set i 0} {$i < $n} {incr i} {
        set c [string index $raw $i]
        if {!$quoted} { append out [esc $c]; continue }
        if {$c eq "\\"} { incr i; append out [esc [string index $raw $i]]
        } elseif {$c eq "\$"} {
            append out *
            if {[string index $raw [expr {$i+1}]] eq "\{"} { set i [string first "\}" $raw $i]; continue }
            regexp {^[A-Za-z0-9_:]*(\([^)]*\))?} [string range $raw [expr {$i+1}] end] m
            incr i [string length $m]
        } elseif {$c eq "\["} {
            append out *; set depth 0
            for {} {$i < $n} {incr i} {
                set d [string index $raw $i]
                if {$d eq "\["} { incr depth } elseif {$d eq "\]"} { if {[incr depth -1] == 0} break }
            }
        } else { append out [esc $c] }
    }
    regsub -all {\*+} $out * out
    return $out
}
proc indent {l} { regexp {^[ \t]*} $l m; return [string length [string map {"\t" "        "} $m]] }

# Tests present in the suite files that did not run: with the reason.
set notrun {}
foreach s $suites {
    set file $testdir/$s.tcl
    set f [open $file]; set src [split [read $f] \n]; close $f
    set ln 0
    foreach l $src {
        incr ln
        if {![regexp {^[ \t]*test[ \t]+(\{[^\}]*\}|"(?:[^"\\]|\\.)*")} $l -> q]} continue
        set quoted [string equal [string index $q 0] "\""]
        set g [name_glob [string range $q 1 end-1] $quoted]
        if {$g eq "*" || $g eq ""} continue
        set found 0
        foreach n $seen { if {[string match $g $n]} { set found 1; break } }
        if {$found} continue
        # The enclosing blocks, innermost first, by indentation.
        # A denied tag on any of them is the reason; else the innermost `if`.
        set tagwhy ""; set ifwhy ""; set cur [indent $l]
        for {set j [expr {$ln - 2}]} {$j >= 0 && $cur > 0} {incr j -1} {
            set h [lindex $src $j]
            if {[string trim $h] eq "" || [regexp {^[ \t]*#} $h]} continue
            set hi [indent $h]
            if {$hi >= $cur} continue
            set cur $hi
            foreach t $denied {
                if {$tagwhy eq "" && [regexp "tags \\{\[^\\}\]*\\m$t\\M" $h]} {
                    set tagwhy "tag $t denied (--tags -$t)"
                }
            }
            if {$ifwhy eq "" && [regexp {^[ \t]*if[ \t]+(\{.*\})[ \t]*\{[ \t]*$} $h -> cond]} {
                set ifwhy "upstream guard $s.tcl:[expr {$j+1}] if $cond"
                if {[string match "*jemalloc*mem_allocator*" $cond]} { append ifwhy " (jemalloc only)" }
            }
        }
        set why [expr {$tagwhy ne "" ? $tagwhy : $ifwhy}]
        if {$why eq ""} { set why "not reached ($s.tcl:$ln)" }
        lappend notrun [list [string map {\\ ""} $g] $why]
    }
}
set nskip [expr {[llength $skip] + [llength $ign] + [llength $notrun]}]
puts "COUNTS [llength $ok] [llength $err] [llength $exc] $nskip"
# Short reasons for the summary line.
set short [dict create]
foreach s $skip { dict incr short "--skiptest" }
foreach s $ign { dict incr short [lindex $s 1] }
foreach s $notrun {
    set w [lindex $s 1]
    if {[string match "tag * denied*" $w]} { set w "[lindex $w 1] tag denied" }
    if {[string match "*(jemalloc only)" $w]} { set w "jemalloc-only guard" }
    if {[string match "not reached*" $w]} { set w "not reached" }
    dict incr short $w
}
set parts {}
dict for {k c} $short { lappend parts "$c $k" }
puts "REASONS [join $parts {; }]"
foreach e $err { puts "  \[err\] [lindex $e 0]: [lindex $e 1]" }
foreach e $exc { puts "  \[exception\] $e" }
foreach b [lsort -unique $blockign] { puts "  \[ignore\] $b (whole server block)" }
foreach s $skip { puts "  \[skip\] $s" }
foreach s $ign { puts "  \[skipped\] [lindex $s 0]: [lindex $s 1]" }
foreach s $notrun { puts "  \[not run\] [lindex $s 0]: [lindex $s 1]" }
