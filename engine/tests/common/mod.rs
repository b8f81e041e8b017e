pub mod sig_cases;
