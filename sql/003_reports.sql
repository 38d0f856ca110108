-- Reserved for the reports work; replaced by its real content.
select 1;
