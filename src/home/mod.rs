//! `$VOLTTRON_HOME`: its layout, the platform configuration file, installed agents.
